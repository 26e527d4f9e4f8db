"""One fixed batch, then a few optimizer steps, through two pretraining graphs from one checkpoint.

    python -m experiments.parity_step --upstream_dir /tmp/electra --vocab_file data/parity/data/vocab.txt \
        --work data/parity/step

Each side (ours, or upstream ELECTRA's own code from ``--upstream_dir``) builds its
PretrainingModel and train op in a process of its own (both have top-level modules named
``model``, ``util`` and ``configure_pretraining``), with dropout off and the randomness taken
out: the masked positions, the [MASK]ed input and the generator's samples are fed from
``<work>/batches.npz`` in place of each side's own draws. The first side initialises the
variables and saves them; the second restores that checkpoint (names match). Each side then
writes, for the first batch, the generator MLM loss, the discriminator loss, the total loss and
the gradient of each of the three for every variable, and, after each of ``--steps`` optimizer
steps (one batch each), every variable including the Adam slots. The schedule is short on
purpose (warmup 2, decay to 0 at step 6) so the steps cross warmup, decay and its end value.

It also writes, for the same batch, how many positions each side's own masking picks per
example: the one place the graphs are known to differ (model/masking.py).

``--a ours --b ours`` compares our graph with itself (zero difference); ``--b_hparams`` changes
the second side's hparams, e.g. to see that a real change shows up.

Side ``torch`` is the PyTorch backend (pretrain/torch_backend, experiments/parity_step_torch.py),
TF-free: it starts from the variables the TF side restored (``<work>/init/variables.npz``), so TF
sides always run first. Like ours it reads the schedule at the step it updates; ``--torch_lr ahead``
reads it one step ahead, and ``--torch_lr as_run`` takes at each step the rate the TF side's update
used. Upstream's train op reads its rate at step s or s + 1 as a race falls (its global-step increment
has no control dependency on the update), so only ``as_run`` compares with it step by step.
"""
import argparse
import contextlib
import json
import os
import subprocess
import sys

import numpy as np

from experiments.parity_compare import (GROUPS, compare, counted, equal, relative_difference,  # noqa: F401
                                        summary, worst)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEARNING_RATE = "parity_learning_rate"
TORCH_LR = ("schedule", "ahead", "as_run")
SCHEDULE = {"num_warmup_steps": 2, "num_train_steps": 6}
NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


def parity_hparams():
    """The parity runs' model (experiments/upstream_parity.py), real generator, dropout off."""
    from experiments.upstream_parity import GENERATORS, HPARAMS

    hparams = {k: v for k, v in HPARAMS.items() if k in ("model_size", "max_seq_length", "learning_rate")}
    hparams.update(GENERATORS["real"], train_batch_size=8, **SCHEDULE,
                   model_hparam_overrides=dict(HPARAMS["model_hparam_overrides"], **NO_DROPOUT))
    return hparams


def read_vocab(vocab_file):
    """(ids of [PAD], [CLS], [SEP], [MASK]; vocab size = line count)."""
    with open(vocab_file, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    vocab = {token: i for i, token in reversed(list(enumerate(lines)))}  # the first of repeated lines
    missing = [t for t in ("[PAD]", "[CLS]", "[SEP]", "[MASK]") if t not in vocab]
    if missing:
        sys.exit(f"{vocab_file}: no {', '.join(missing)} line")
    return {t: vocab[t] for t in ("[PAD]", "[CLS]", "[SEP]", "[MASK]")}, len(lines)


def make_batches(vocab_file, batch_size, seq_length, max_predictions, steps, seed=0):
    """``steps`` batches of random text with fixed masks and samples, as both graphs would see them.

    Lengths range from 3 tokens (one candidate) to the full sequence, so padding, short examples
    and unused prediction slots (position 0, weight 0) all occur; some samples equal the original.
    """
    ids, vocab_size = read_vocab(vocab_file)
    rng = np.random.RandomState(seed)
    shape = (steps, batch_size)
    batches = {k: np.zeros(shape + (seq_length,), np.int32) for k in ("input_ids", "input_mask", "segment_ids",
                                                                     "masked_input_ids")}
    batches.update({k: np.zeros(shape + (max_predictions,), np.int32) for k in ("positions", "masked_ids",
                                                                               "sampled_ids")})
    batches["weights"] = np.zeros(shape + (max_predictions,), np.float32)
    normal = [i for i in range(vocab_size) if i not in ids.values()]
    for s in range(steps):
        for b in range(batch_size):
            length = 3 if b == 0 else rng.randint(3, seq_length + 1)
            tokens = [ids["[CLS]"]] + list(rng.choice(normal, length - 2)) + [ids["[SEP]"]]
            batches["input_ids"][s, b, :length] = tokens
            batches["input_mask"][s, b, :length] = 1
            batches["segment_ids"][s, b, length // 2:length] = 1 if b % 2 else 0
            n = min(max_predictions, max(1, int(round(0.15 * (length - 2)))))
            positions = rng.choice(np.arange(1, length - 1), n, replace=False)
            batches["positions"][s, b, :n] = positions
            batches["masked_ids"][s, b, :n] = batches["input_ids"][s, b, positions]
            batches["weights"][s, b, :n] = 1.0
            masked = batches["input_ids"][s, b].copy()
            masked[positions[rng.uniform(size=n) < 0.85]] = ids["[MASK]"]
            batches["masked_input_ids"][s, b] = masked
            sampled = rng.choice(normal, n)
            keep = rng.uniform(size=n) < 0.3  # the generator sampled the original: not "replaced"
            sampled[keep] = batches["masked_ids"][s, b, :n][keep]
            batches["sampled_ids"][s, b, :n] = sampled
    return batches


def build_side(system, upstream_dir, vocab_file, hparams, feeds, lr_ahead=False):
    """(config, total loss, mlm loss, train op, own-masking weights) for ``system``'s graph on ``feeds``.

    ``lr_ahead`` (ours only) reads our schedule one step ahead, as upstream's train op does when its
    global-step increment (which has no control dependency on the update) runs first. The learning
    rate tensor the update reads goes to the graph collection LEARNING_RATE, so a side can record
    the rate each step really used.
    """
    import tensorflow.compat.v1 as tf

    features = {k: feeds[k] for k in ("input_ids", "input_mask", "segment_ids")}
    data_dir = os.path.dirname(vocab_file)
    if system == "upstream":
        from experiments.upstream_parity import import_upstream

        configure_pretraining, run_pretraining = import_upstream(upstream_dir)
        from model import optimization
        from pretrain import pretrain_data, pretrain_helpers

        config = configure_pretraining.PretrainingConfig("step", data_dir, vocab_file=vocab_file,
                                                         do_lower_case=False, **hparams)
        own = pretrain_helpers.mask(config, pretrain_data.features_to_inputs(features), config.mask_prob)
        pretrain_helpers.mask = lambda config, inputs, mask_prob, **unused: pretrain_data.get_updated_inputs(
            inputs, input_ids=feeds["masked_input_ids"], masked_lm_positions=feeds["positions"],
            masked_lm_ids=feeds["masked_ids"], masked_lm_weights=feeds["weights"])
        pretrain_helpers.sample_from_softmax = lambda logits, disallow=None: tf.one_hot(
            feeds["sampled_ids"], logits.shape[-1])
        init = optimization.AdamWeightDecayOptimizer.__init__

        def recording_init(self, learning_rate, *args, **kwargs):
            tf.add_to_collection(LEARNING_RATE, learning_rate)
            init(self, learning_rate, *args, **kwargs)

        optimization.AdamWeightDecayOptimizer.__init__ = recording_init
        model = run_pretraining.PretrainingModel(config, features, True)
        train_op = optimization.create_optimizer(
            model.total_loss, config.learning_rate, config.num_train_steps, weight_decay_rate=config.weight_decay_rate,
            use_tpu=False, warmup_steps=config.num_warmup_steps, lr_decay_power=config.lr_decay_power)
        return config, model.total_loss, model.mlm_output.loss, train_op, own.masked_lm_weights

    from configure_pretraining import PretrainingConfig
    from model import electra_model, masking, optimization
    from util.tokenization import KoTokenizer

    config = PretrainingConfig("step", data_dir, vocab_file=vocab_file, **hparams)
    config.validate()
    config.attach_vocab(KoTokenizer.from_vocab(vocab_file, "wordpiece", False))
    own = masking.mask(masking.features_to_inputs(features), config.mask_prob, config.max_predictions_per_seq,
                       config.mask_id, config.special_ids, with_replacement=config.mask_with_replacement)
    masking.mask = lambda inputs, *unused, **unused_too: inputs._replace(
        input_ids=feeds["masked_input_ids"], masked_lm_positions=feeds["positions"],
        masked_lm_ids=feeds["masked_ids"], masked_lm_weights=feeds["weights"])
    masking.sample_from_softmax = lambda logits, disallow=None, row_keys=None: feeds["sampled_ids"]
    if lr_ahead:
        schedule = optimization.learning_rate_schedule
        optimization.learning_rate_schedule = lambda step, *args: schedule(step + 1, *args)
    model = electra_model.PretrainingModel(config, features, is_training=True)
    train_op, lr, _, _ = optimization.create_train_op(
        model.total_loss, config.learning_rate, config.num_train_steps, config.weight_decay_rate,
        config.num_warmup_steps, config.lr_decay_power)
    tf.add_to_collection(LEARNING_RATE, lr)
    return config, model.total_loss, model.mlm_loss, train_op, own.masked_lm_weights


@contextlib.contextmanager
def restored_session(saver, checkpoint):
    """A one-thread session whose variables come from ``checkpoint``; the first side to get here
    initialises them and writes it, so every later side starts from the same values."""
    import tensorflow.compat.v1 as tf

    with tf.Session(config=tf.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)) as sess:
        sess.run(tf.global_variables_initializer())
        if os.path.exists(checkpoint + ".index"):
            saver.restore(sess, checkpoint)
        else:
            os.makedirs(os.path.dirname(checkpoint), exist_ok=True)
            saver.save(sess, checkpoint, write_meta_graph=False, write_state=False)
        yield sess


def run_side(system, upstream_dir, vocab_file, hparams, work, label, steps, seed=0, lr_ahead=False):
    """Writes ``<work>/step_<label>.npz``; the first side to run also writes ``<work>/init/model.ckpt``
    and its variables as arrays in ``<work>/init/variables.npz`` (the torch side's start)."""
    import tensorflow.compat.v1 as tf

    data = np.load(os.path.join(work, "batches.npz"))
    checkpoint = os.path.join(work, "init", "model.ckpt")
    out = {}
    with tf.Graph().as_default():
        tf.set_random_seed(seed)
        feeds = {k: tf.placeholder(tf.as_dtype(data[k].dtype), data[k].shape[1:], name=k) for k in data.files}
        config, total, mlm, train_op, own_weights = build_side(system, upstream_dir, vocab_file, hparams, feeds,
                                                                      lr_ahead)
        disc = (total - config.gen_weight * mlm) / config.disc_weight
        tvars = tf.trainable_variables()
        names = [v.op.name for v in tvars]
        # A loss that does not reach a variable has no gradient for it (None): left out. A table
        # reached only through lookups has sparse rows (IndexedSlices): summed into a dense array.
        grads = {group: {n: tf.convert_to_tensor(g) for n, g in zip(names, tf.gradients(loss, tvars))
                         if g is not None}
                 for group, loss in zip(GROUPS, (mlm, disc, total))}
        saver = tf.train.Saver(dict(zip(names, tvars)))
        with restored_session(saver, checkpoint) as sess:
            arrays = os.path.join(work, "init", "variables.npz")
            if not os.path.exists(arrays):
                np.savez(arrays, **dict(zip(names, sess.run(tvars))))
            batch = lambda s: {feeds[k]: data[k][s] for k in data.files}  # noqa: E731
            out["own_mask_counts"] = sess.run(own_weights, batch(0)).sum(-1)
            losses, values = sess.run([(mlm, disc, total), grads], batch(0))
            out.update({f"first/{g}": x for g, x in zip(GROUPS, losses)})
            for group in GROUPS:
                out.update({f"grad/{group}/{name}": value for name, value in values[group].items()})
            variables = [v for v in tf.global_variables()]
            lr = tf.get_collection(LEARNING_RATE)[0]
            for s in range(steps):
                _, losses, out[f"step{s}/lr"] = sess.run([train_op, (mlm, disc, total), lr],
                                                         batch(s % len(data["input_ids"])))
                out[f"step{s}/losses"] = np.array(losses)
                for v, x in zip(variables, sess.run(variables)):
                    out[f"step{s}/var/{v.op.name}"] = x
    with open(os.path.join(work, f"step_{label}.npz.tmp"), "wb") as f:
        np.savez(f, **out)
    os.replace(os.path.join(work, f"step_{label}.npz.tmp"), os.path.join(work, f"step_{label}.npz"))


def start_work(vocab_file, work, hparams, steps, batch_size=None):
    """A fresh ``work`` with ``steps`` fixed batches in batches.npz (the sides' shared input); returns the
    absolute vocab file and work dir and ``hparams`` with the vocab's size."""
    vocab_file, work = os.path.abspath(vocab_file), os.path.abspath(work)
    hparams = dict(hparams, vocab_size=read_vocab(vocab_file)[1])
    os.makedirs(work, exist_ok=True)
    if os.path.exists(os.path.join(work, "init", "model.ckpt.index")):
        sys.exit(f"{work}/init already holds a checkpoint: use a fresh --work")
    seq = hparams.get("max_seq_length", 128)
    from configure_pretraining import prediction_slots  # ours: start_work runs in the parent, never a side

    batches = make_batches(vocab_file, batch_size or hparams.get("train_batch_size", 8), seq,
                           prediction_slots(hparams.get("mask_prob", 0.15), seq), steps)
    np.savez(os.path.join(work, "batches.npz"), **batches)
    return vocab_file, work, hparams


def run(a, b, vocab_file, work, upstream_dir=None, hparams=None, b_hparams=None, steps=8, batch_size=None,
        tolerance=1e-4, ours_lr_ahead=False, torch_lr="schedule", grad_tolerance=None):
    """Both sides in their own processes, then the comparison (written to ``<work>/parity_step.json``).

    ``torch_lr`` (a torch side's learning rates): ``schedule``, as ours reads it; ``ahead``, one step
    ahead as upstream's train op reads it when its race falls that way; ``as_run``, at each step the
    rate the other (TF) side's update used, recorded in its npz.
    """
    vocab_file, work, hparams = start_work(vocab_file, work, hparams or parity_hparams(), steps, batch_size)
    labels = [f"a_{a}", f"b_{b}"]
    sides = [(labels[0], a, {}), (labels[1], b, b_hparams or {})]
    # A TF side writes the initial checkpoint the others restore; the torch side can only read it.
    for label, system, extra in sorted(sides, key=lambda side: side[1] == "torch"):
        subprocess.check_call([sys.executable, "-m", "experiments.parity_step", "--_side", system, "--_label", label,
                               "--vocab_file", vocab_file, "--work", work, "--upstream_dir", upstream_dir or "",
                               "--steps", str(steps), "--_hparams", json.dumps(dict(hparams, **extra))]
                              + (["--ours_lr_ahead"] if ours_lr_ahead else [])
                              + ["--torch_lr", torch_lr, "--_other", labels[label == labels[0]]], cwd=ROOT)
    result = compare(*(os.path.join(work, f"step_{label}.npz") for label in labels))
    result.update(a=a, b=b, hparams=hparams, b_hparams=b_hparams or {}, ours_lr_ahead=ours_lr_ahead,
                  torch_lr=torch_lr, tolerance=tolerance, grad_tolerance=grad_tolerance,
                  equal=equal(result, tolerance, grad_tolerance))
    with open(os.path.join(work, "parity_step.json.tmp"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    os.replace(os.path.join(work, "parity_step.json.tmp"), os.path.join(work, "parity_step.json"))
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--upstream_dir", default="", help="a checkout of google-research/electra (for side upstream)")
    p.add_argument("--vocab_file", required=True, help="vocab.txt (the parity data's, or any WordPiece vocab)")
    p.add_argument("--work", default="data/parity/step")
    p.add_argument("--a", default="ours", choices=["ours", "upstream", "torch"])
    p.add_argument("--b", default="upstream", choices=["ours", "upstream", "torch"])
    p.add_argument("--b_hparams", default="{}", help="JSON hparams changed on side b only")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--ours_lr_ahead", action="store_true",
                   help="our side reads its learning-rate schedule one step ahead, as upstream's train op does")
    p.add_argument("--torch_lr", default="schedule", choices=TORCH_LR,
                   help="the torch side's learning rates: its schedule as ours reads it, one step ahead, or "
                        "as_run: at each step the rate the TF side's update used (upstream's race decides it)")
    p.add_argument("--_other", help=argparse.SUPPRESS)
    p.add_argument("--tolerance", type=float, default=1e-4)
    p.add_argument("--grad_tolerance", type=float, help="for the gradients, when not --tolerance (issue 29: "
                                                        "--tolerance 1e-5 --grad_tolerance 1e-4)")
    p.add_argument("--_side", help=argparse.SUPPRESS)
    p.add_argument("--_label", help=argparse.SUPPRESS)
    p.add_argument("--_hparams", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._side == "torch":
        from experiments.parity_step_torch import run_torch_side

        run_torch_side(args.vocab_file, json.loads(args._hparams), args.work, args._label, args.steps,
                       args.torch_lr, os.path.join(args.work, f"step_{args._other}.npz"))
        return
    if args._side:
        run_side(args._side, os.path.abspath(args.upstream_dir), args.vocab_file, json.loads(args._hparams),
                 args.work, args._label, args.steps, lr_ahead=args.ours_lr_ahead and args._side == "ours")
        return
    if "upstream" in (args.a, args.b) and not os.path.exists(os.path.join(args.upstream_dir, "run_pretraining.py")):
        sys.exit(f"--upstream_dir {args.upstream_dir!r}: no run_pretraining.py (a google-research/electra checkout)")
    if not os.path.isfile(args.vocab_file):
        sys.exit(f"--vocab_file {args.vocab_file}: no such file")
    result = run(args.a, args.b, args.vocab_file, args.work, args.upstream_dir, b_hparams=json.loads(args.b_hparams),
                 steps=args.steps, tolerance=args.tolerance, grad_tolerance=args.grad_tolerance,
                 ours_lr_ahead=args.ours_lr_ahead, torch_lr=args.torch_lr)
    print("\n".join(summary(result, args.tolerance, args.grad_tolerance)))


if __name__ == "__main__":
    main()
