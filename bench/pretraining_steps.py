"""One pre-training step of each system the pre-training benchmarks time, built in its own process.

Each builder returns ``step()``, running one optimizer step on a fixed synthetic batch and
returning the loss as a float. ``config`` builds the benchmarks' PretrainingConfig: the
published Dialog-KoELECTRA-Small (or ``size="base"``) at 128 tokens, vocab 40000.

- ``tf_graph_step``: the graph ``pretrain.training.model_fn_builder`` builds for the Estimator
  (masking, generator, sampling, discriminator, AdamW + clipping), run in a session, with the
  session config run_pretraining.py uses for the precision mode;
- ``torch_backend_step``: the torch backend's own ``train.train_step`` over its model,
  optimizer and schedule (pretrain/torch_backend), as ``run_pretraining.py --backend torch``
  runs them;
- ``transformers_step``: a plain training loop over transformers' ElectraForMaskedLM and
  ElectraForPreTraining (the baseline a user would write without this toolkit);
- ``tf_matmul_peak`` / ``torch_matmul_peak``: a timed n^3 matmul per dtype, the ceiling the
  achieved FLOP/s are compared with, measured under the same load.
"""
import itertools
import os
import time

SEQ = 128
VOCAB = 40000
SPECIAL_IDS = (2, 3, 4, 0)  # [CLS], [SEP], [MASK], [PAD] as in every vocab this toolkit builds
MASK_ID = 4


def config(batch_size, size="small", **overrides):
    """The benchmarks' PretrainingConfig (no TensorFlow imported): published Small, or the Base preset."""
    import configure_pretraining

    # Small as Dialog-KoELECTRA publishes it: the generator as wide as the discriminator.
    sizes = dict(generator_hidden_size=1.0) if size == "small" else dict(model_size="base")
    values = dict(vocab_size=VOCAB, learning_rate=1e-4, num_warmup_steps=10, max_seq_length=SEQ,
                  model_hparam_overrides={"max_position_embeddings": SEQ}, train_batch_size=batch_size,
                  iterations_per_loop=10 ** 9, **sizes)
    values.update(overrides)
    cfg = configure_pretraining.PretrainingConfig("bench", "/tmp", **values)
    cfg.validate()
    cfg.mask_id, cfg.special_ids = MASK_ID, SPECIAL_IDS
    return cfg


def synthetic_ids(batch_size, vocab_size=VOCAB, seed=0):
    """Full-length examples, [CLS] a [SEP] b [SEP], token ids uniform over the vocabulary."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ids = rng.integers(10, vocab_size, size=(batch_size, SEQ)).astype("int64")
    ids[:, 0], ids[:, SEQ // 2], ids[:, -1] = 2, 3, 3
    segments = np.zeros_like(ids)
    segments[:, SEQ // 2 + 1:] = 1
    return ids, segments


# ---- TensorFlow ---------------------------------------------------------------------------

def tf_graph_step(mode, batch_size):
    """(step, profile) of our TF graph in precision ``mode`` (fp32, bf16_cpu)."""
    import tensorflow.compat.v1 as tf

    tf.disable_eager_execution()
    tf.logging.set_verbosity(tf.logging.ERROR)
    from pretrain import training

    cfg = config(batch_size)
    ids, segments = (a.astype("int32") for a in synthetic_ids(batch_size))
    graph = tf.Graph()
    with graph.as_default():
        features = {"input_ids": tf.constant(ids), "input_mask": tf.ones_like(ids),
                    "segment_ids": tf.constant(segments)}
        spec = training.model_fn_builder(cfg, mode)(features, None, tf.estimator.ModeKeys.TRAIN,
                                                    {"batch_size": batch_size})
        session = tf.Session(config=training.session_config(mode))
        session.run(tf.global_variables_initializer())

    def step():
        return float(session.run([spec.train_op, spec.loss])[1])

    def profile():
        """Share of op time in matmuls and in casts, from one traced step."""
        metadata = tf.RunMetadata()
        session.run(spec.train_op, options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE),
                    run_metadata=metadata)
        total = matmul = cast = 0
        for device in metadata.step_stats.dev_stats:
            for node in device.node_stats:
                op = node.timeline_label.split("(")[0].split(" = ")[-1]
                total += node.all_end_rel_micros
                matmul += node.all_end_rel_micros if "MatMul" in op else 0
                cast += node.all_end_rel_micros if op == "Cast" else 0
        return {"matmul_share": matmul / total, "cast_share": cast / total}

    return step, profile


def tf_matmul_peak(n=2048):
    """A function timing one n^3 matmul per dtype in TensorFlow (oneDNN on this CPU)."""
    import tensorflow.compat.v1 as tf

    graph = tf.Graph()
    with graph.as_default():
        a = tf.Variable(tf.random.normal([n, n]))
        b = tf.Variable(tf.random.normal([n, n]))
        products = {name: tf.reduce_sum(tf.cast(tf.matmul(tf.cast(a, dtype), tf.cast(b, dtype)), tf.float32))
                    for name, dtype in (("fp32", tf.float32), ("bf16", tf.bfloat16))}
        session = tf.Session()
        session.run(tf.global_variables_initializer())
        session.run(products)
    return _timer(2 * n ** 3, {name: (lambda p=p: session.run(p)) for name, p in products.items()})


def _timer(flops, runs, reps=3):
    def measure():
        seconds = {}
        for name, run in runs.items():
            start = time.perf_counter()
            for _ in range(reps):
                run()
            seconds[name] = (time.perf_counter() - start) / reps
        return {"flops": flops, "seconds": seconds}

    return measure


# ---- PyTorch ------------------------------------------------------------------------------

def torch_backend_step(cfg, device="cpu", attention=None, mode=None):
    """(step, profile) of the torch backend's train_step on ``cfg`` (its precision and torch_compile).

    ``attention`` (sdpa, explicit) overrides the model's choice for the device; ``mode``
    (train.autocast's names) the precision ``cfg`` gives on it, e.g. bf16 autocast on a GPU.
    """
    import torch

    from pretrain.torch_backend import train
    from pretrain.torch_backend.model import ElectraPretrainer
    from pretrain.torch_backend.optim import build_optimizer, build_scheduler

    device = torch.device(device)
    torch.manual_seed(0)
    model = ElectraPretrainer(cfg, **({"attention": attention} if attention else {})).to(device)
    optimizer, mode = build_optimizer(model, cfg), mode or train.precision_mode(cfg, device)
    scheduler = build_scheduler(optimizer, cfg)
    scaler = torch.amp.GradScaler("cuda") if mode == "fp16_gpu" else None
    runner = torch.compile(model) if cfg.torch_compile else model
    ids, segments = (torch.from_numpy(a) for a in synthetic_ids(cfg.train_batch_size, cfg.vocab_size))
    batch = {"input_ids": ids, "input_mask": torch.ones_like(ids), "segment_ids": segments}
    records = itertools.repeat(batch)
    generator = train.masking_generator(0, 0, device)
    procs = SingleProcess(device)
    steps = itertools.count()
    model.train()

    def step():
        values, _, _ = train.train_step(cfg, procs, runner, model, optimizer, scheduler, scaler, mode, records,
                                        generator, next(steps))
        return values["loss/total"]

    def profile():
        """Share of op time (self CPU time) in matmuls and in copies (mostly autocast's casts), one step."""
        from torch.profiler import ProfilerActivity, profile as torch_profile

        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        times = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
        total = sum(times.values())
        matmul = sum(t for k, t in times.items() if k in ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"))
        return {"matmul_share": matmul / total, "cast_share": times.get("aten::copy_", 0) / total}

    return step, profile


class SingleProcess:
    """What train_step asks of pretrain.torch_backend.processes.Processes, for one process."""

    world, rank, is_main = 1, 0, True

    def __init__(self, device):
        self.device = device

    def mean(self, values):
        return values


def torch_matmul_peak(device="cpu", dtypes=("fp32", "bf16"), n=2048):
    """A function timing one n^3 matmul per dtype in PyTorch on ``device``."""
    import torch

    kinds = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    device = torch.device(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    pairs = {name: (torch.randn(n, n, device=device, dtype=kinds[name]),
                     torch.randn(n, n, device=device, dtype=kinds[name])) for name in dtypes}

    def product(a, b):
        torch.mm(a, b)
        sync()

    for a, b in pairs.values():
        product(a, b)
    return _timer(2 * n ** 3, {name: (lambda a=a, b=b: product(a, b)) for name, (a, b) in pairs.items()})


def transformers_step(batch_size, threads=2):
    """A plain transformers loop: ElectraForMaskedLM + ElectraForPreTraining, tied embeddings, torch AdamW.

    The same masking (15 %, 85 % [MASK]), Gumbel sampling, loss MLM + 50 * RTD and clipping at
    1.0 as ELECTRA, written as a user would without this toolkit: the LM head scores every position.
    """
    os.environ["USE_TF"] = "0"
    import torch
    from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    bert = config(batch_size).bert_config()
    common = dict(vocab_size=VOCAB, embedding_size=bert.embedding_size, max_position_embeddings=SEQ,
                  num_hidden_layers=bert.num_hidden_layers, hidden_size=bert.hidden_size,
                  num_attention_heads=bert.num_attention_heads, intermediate_size=bert.intermediate_size)
    generator = ElectraForMaskedLM(ElectraConfig(**common))  # generator_hidden_size 1.0: the same sizes
    discriminator = ElectraForPreTraining(ElectraConfig(**common))
    discriminator.electra.embeddings = generator.electra.embeddings  # ELECTRA's tied embeddings
    params = {id(p): p for p in list(generator.parameters()) + list(discriminator.parameters())}.values()
    optimizer = torch.optim.AdamW(list(params), lr=1e-4, weight_decay=0.01, eps=1e-6)
    ids, segments = (torch.from_numpy(a) for a in synthetic_ids(batch_size))
    n = int((0.15 + 0.005) * SEQ)
    generator.train()
    discriminator.train()

    def step():
        candidates = (ids != 2) & (ids != 3)
        num = torch.round(candidates.sum(1).float() * 0.15).long().clamp(1, n)
        scores = torch.where(candidates, torch.rand(ids.shape), torch.full(ids.shape, -1.0))
        positions = scores.topk(n, dim=1).indices
        valid = torch.arange(n)[None, :] < num[:, None]
        chosen = torch.zeros_like(ids, dtype=torch.bool).scatter_(1, positions, valid)
        replace = chosen & (torch.rand(ids.shape) < 0.85)
        masked = torch.where(replace, torch.full_like(ids, 4), ids)
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        out = generator(input_ids=masked, token_type_ids=segments, labels=labels)
        with torch.no_grad():  # Gumbel-max sampling at the masked positions only
            logits = out.logits[chosen]
            gumbel = -torch.log(-torch.log(torch.rand_like(logits) + 1e-9) + 1e-9)
            fake = ids.clone()
            fake[chosen] = (logits + gumbel).argmax(-1)
            is_fake = (fake != ids).long()
        disc = discriminator(input_ids=fake, token_type_ids=segments, labels=is_fake)
        loss = out.loss + 50.0 * disc.loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], 1.0)
        optimizer.step()
        return loss.item()

    return step
