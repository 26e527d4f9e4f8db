"""The training step log: losses, speed, time left and model FLOP/s, printed and in TensorBoard.

Model FLOPs are counted as docs/benchmarks.md counts them (bench/bench_pretraining.py):
3x the forward pass's matmuls (2 FLOPs per multiply-add) of both encoders, the
discriminator head at every position and the generator's vocabulary head only at the
``max_predictions_per_seq`` masked positions, as upstream ELECTRA computes it. Divided by
the step time, that is the rate to compare with a GPU or TPU's peak. tokens/s counts the
positions that are not padding (text, [CLS], [SEP]), and the fill rate, their share of all
positions, says how much of the compute is text (docs/dataset.md, "Packing short documents").

No TensorFlow here: both backends feed ``StepLog`` (the TF backend through its hook,
pretrain/tf_backend/hooks.py).
"""
import time

from pretrain import layout

# A curve needs this many points: a run logs at least this often, however long or short it is.
MIN_LOG_LINES = 20


def log_every(config):
    """Steps between log lines: iterations_per_loop, or less so even a short run shows its curve."""
    return max(1, min(config.iterations_per_loop, config.num_train_steps // MIN_LOG_LINES))


def encoder_flops(seq, layers, hidden, intermediate, embedding):
    """One forward pass of an encoder over ``seq`` positions (embedding projection included when there is one)."""
    per_token = layers * (2 * 4 * hidden * hidden + 2 * 2 * hidden * intermediate + 2 * 2 * seq * hidden)
    projection = 2 * embedding * hidden if embedding != hidden else 0
    return seq * (per_token + projection)


def flops_per_example(config):
    """Training FLOPs per example (forward x 3) of the configured generator and discriminator."""
    from configure_pretraining import generator_config

    seq, disc = config.max_seq_length, config.bert_config()
    forward = encoder_flops(seq, disc.num_hidden_layers, disc.hidden_size, disc.intermediate_size,
                            disc.embedding_size)
    if config.electra_objective:
        forward += seq * 2 * (disc.hidden_size * disc.hidden_size + disc.hidden_size)  # discriminator head
        gen = generator_config(config)
        if gen is not disc:
            forward += encoder_flops(seq, gen.num_hidden_layers, gen.hidden_size, gen.intermediate_size,
                                     gen.embedding_size)
        lm_hidden, embedding = gen.hidden_size, gen.embedding_size
    else:
        lm_hidden, embedding = disc.hidden_size, disc.embedding_size
    # The LM head maps to the embedding size, then onto the vocabulary through the input embeddings.
    forward += config.max_predictions_per_seq * 2 * (lm_hidden * embedding + embedding * config.vocab_size)
    return 3 * forward


def duration(seconds):
    seconds = int(seconds)
    if seconds >= 86400:
        return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def speed(batch_size, seq_length, flops_per_batch_example, steps, seconds, steps_left):
    """examples/s, positions/s (padding included), model FLOP/s and seconds left."""
    steps_per_second = steps / max(seconds, 1e-9)
    examples = batch_size * steps_per_second
    return {"examples_per_sec": examples, "positions_per_sec": examples * seq_length,
            "model_flops_per_sec": examples * flops_per_batch_example,
            "seconds_left": steps_left / steps_per_second}


class StepLog:
    """Prints one line every ``every`` steps and writes its speed figures to TensorBoard.

    Fed after every step with the number of steps done, that step's logged values and its
    real (non-padding) tokens. The rates are over the steps since the previous line; the
    first step fed, which builds and compiles, is left out. The losses and ``disc_auc_real``
    are that step's batch values. ``writer`` is anything with ``add_scalar(tag, value, step)``
    (torch.utils.tensorboard's SummaryWriter; the TF backend's hook adapts its own).
    """

    def __init__(self, config, every, writer=None, printer=None):
        self.every, self.writer = every, writer
        self.batch_size, self.num_steps = config.train_batch_size, config.num_train_steps
        self.seq_length = config.max_seq_length
        self.flops = flops_per_example(config)
        self.printer = printer or (lambda line: print(line, flush=True))
        self.last = None
        self.real_tokens = 0

    def update(self, step, values, real_tokens=None):
        now = time.time()
        if self.last is None:
            self.last = (step, now)
            return None
        self.real_tokens += real_tokens or 0
        if step % self.every and step != self.num_steps:
            return None
        last_step, last_time = self.last
        self.last = (step, now)
        real, self.real_tokens = (self.real_tokens if real_tokens is not None else None), 0
        if step <= last_step:
            return None
        rates = speed(self.batch_size, self.seq_length, self.flops, step - last_step, now - last_time,
                      self.num_steps - step)
        positions = rates["positions_per_sec"]
        if real is not None:
            # tokens/s counts text, [CLS] and [SEP]: the positions that are not padding.
            rates["tokens_per_sec"] = real / max(now - last_time, 1e-9)
            rates["fill_rate"] = real / max((step - last_step) * self.batch_size * self.seq_length, 1)
            tokens = (f"{rates['tokens_per_sec']:.0f} tokens/s ({rates['fill_rate']:.0%} of "
                      f"{positions:.0f} positions/s)")
        else:
            tokens = f"{positions:.0f} positions/s (padding included)"
        shown = " ".join(f"{k}(batch) {v:.4g}" if k.endswith("_real") else f"{k} {v:.4g}"
                         for k, v in sorted(values.items()))
        line = (f"train step {step}/{self.num_steps}: {shown}, {rates['examples_per_sec']:.1f} examples/s, "
                f"{tokens}, {rates['model_flops_per_sec'] / 1e9:.2f} model GFLOP/s, "
                f"{duration(rates['seconds_left'])} left")
        self.printer(line)
        if self.writer is not None:
            for name, value in rates.items():
                self.writer.add_scalar(f"speed/{name}", value, step)
        return line


def resume_line(model_dir, num_train_steps, backend=None, latest=None):
    """'resuming from <checkpoint> at step N of T', or None when the model dir has no checkpoint
    (of ``backend``'s kind, when given: each backend resumes from its own). ``latest``, a
    (backend, path, step), is the checkpoint the run chose past damaged newer ones
    (pretrain/resume_check.py)."""
    latest = latest or layout.latest_checkpoint(model_dir, backend)
    if not latest:
        return None
    _, path, step = latest
    if step >= num_train_steps:
        return f"{path} is at step {step}, num_train_steps is {num_train_steps}: nothing left to train"
    return f"resuming from {path} at step {step} of {num_train_steps}"
