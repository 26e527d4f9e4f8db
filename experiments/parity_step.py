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
sides always run first. Like ours it reads the schedule at the step it updates; ``--torch_lr_ahead``
reads it one step ahead as upstream does.
"""
import argparse
import contextlib
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEDULE = {"num_warmup_steps": 2, "num_train_steps": 6}
NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
GROUPS = ("mlm_loss", "disc_loss", "total_loss")
NOISE_FRACTION = 1e-9


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

    ``lr_ahead`` (ours only) reads our schedule one step ahead, as upstream's train op does (its
    global-step increment has no control dependency on the update, and runs first).
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
    train_op, _, _, _ = optimization.create_train_op(
        model.total_loss, config.learning_rate, config.num_train_steps, config.weight_decay_rate,
        config.num_warmup_steps, config.lr_decay_power)
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
        # A loss that does not reach a variable has no gradient for it (None): left out.
        grads = {group: {n: g for n, g in zip(names, tf.gradients(loss, tvars)) if g is not None}
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
            for s in range(steps):
                out[f"step{s}/losses"] = np.array(sess.run([train_op, (mlm, disc, total)], batch(s % len(data["input_ids"])))[1])
                for v, x in zip(variables, sess.run(variables)):
                    out[f"step{s}/var/{v.op.name}"] = x
    with open(os.path.join(work, f"step_{label}.npz.tmp"), "wb") as f:
        np.savez(f, **out)
    os.replace(os.path.join(work, f"step_{label}.npz.tmp"), os.path.join(work, f"step_{label}.npz"))


def relative_difference(a, b, floor=0.0):
    """max |a - b| over max(max |a|, floor): scale-free, so one threshold fits every tensor.

    ``floor`` keeps tensors that are zero but for rounding (the key biases' gradients: softmax
    ignores a constant added to every score) from counting their rounding noise as a difference.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    if not a.size:
        return 0.0
    scale = max(np.abs(a).max(), floor)
    diff = np.abs(a - b).max()
    return float(diff / scale) if scale else float(diff)


def kind(name):
    """Tensors compared against one shared floor: a gradient group, parameters, or one Adam slot."""
    for suffix in ("/adam_m", "/adam_v"):
        if name.endswith(suffix):
            return suffix
    return name.split("/")[1] if name.startswith("grad/") else "param"


def floors(arrays, names, fraction=1e-6):
    """Per kind, ``fraction`` of the largest magnitude of any tensor of that kind."""
    largest = {}
    for name in names:
        largest[kind(name)] = max(largest.get(kind(name), 0.0), float(np.abs(arrays[name]).max(initial=0.0)))
    return {k: fraction * v for k, v in largest.items()}


def compare(path_a, path_b):
    """Per quantity the relative difference between the two sides; names on one side only are listed."""
    a, b = np.load(path_a), np.load(path_b)
    result = {"only_a": sorted(set(a.files) - set(b.files)), "only_b": sorted(set(b.files) - set(a.files)),
              "mask_counts": {"a": a["own_mask_counts"].tolist(), "b": b["own_mask_counts"].tolist()},
              "first": {}, "grad": {g: {} for g in GROUPS}, "steps": []}
    for group in GROUPS:
        result["first"][group] = {"a": float(a[f"first/{group}"]), "b": float(b[f"first/{group}"]),
                                  "relative": relative_difference(a[f"first/{group}"], b[f"first/{group}"])}
    grads = sorted(k for k in set(a.files) & set(b.files) if k.startswith("grad/"))
    floor = floors(a, grads)
    # Variables the loss does not depend on but for rounding (the attention key biases, whose
    # gradients are ~1e-11 of the largest where every other is above ~1e-7): Adam turns that
    # noise into full-size steps, so after a step they are compared to nothing.
    noise = floors(a, grads, NOISE_FRACTION)["total_loss"]
    result["noise_only"] = sorted(k.split("/", 2)[2] for k in grads if k.startswith("grad/total_loss/")
                                  and np.abs(a[k]).max() <= noise)
    for key in grads:
        _, group, name = key.split("/", 2)
        result["grad"][group][name] = relative_difference(a[key], b[key], floor[kind(key)])
    s = 0
    while f"step{s}/losses" in a.files and f"step{s}/losses" in b.files:
        prefix = f"step{s}/var/"
        shared = sorted(k for k in set(a.files) & set(b.files) if k.startswith(prefix))
        floor = floors(a, shared)
        result["steps"].append({"losses_a": a[f"step{s}/losses"].tolist(), "losses_b": b[f"step{s}/losses"].tolist(),
                                "losses_relative": relative_difference(a[f"step{s}/losses"], b[f"step{s}/losses"]),
                                "variables": {k[len(prefix):]: relative_difference(a[k], b[k], floor[kind(k)])
                                              for k in shared}})
        s += 1
    return result


def worst(differences):
    """(name, value) of the largest entry of a name -> relative difference dict."""
    name = max(differences, key=differences.get) if differences else None
    return name, (differences[name] if name else 0.0)


def summary(result, tolerance):
    lines = []
    counts = result["mask_counts"]
    same = counts["a"] == counts["b"]
    lines.append(f"own masking, positions per example on the first batch: {'same' if same else 'differ'}"
                 f" (a {counts['a']}, b {counts['b']})")
    for group in GROUPS:
        first = result["first"][group]
        name, value = worst(result["grad"][group])
        lines.append(f"{group}: a {first['a']:.7g} b {first['b']:.7g} (relative {first['relative']:.2e}); "
                     f"gradients of {len(result['grad'][group])} variables, worst {value:.2e} ({name})")
    noise_only = set(result["noise_only"])
    if noise_only:
        lines.append(f"gradient only rounding noise, left out after steps: {', '.join(sorted(noise_only))}")
    for s, step in enumerate(result["steps"]):
        name, value = worst(counted(step, noise_only))
        lines.append(f"after step {s}: losses relative {step['losses_relative']:.2e}; "
                     f"{len(counted(step, noise_only))} variables (with Adam slots), worst {value:.2e} ({name})")
    for side in ("only_a", "only_b"):
        if result[side]:
            lines.append(f"{side}: {', '.join(result[side][:10])}")
    lines.append(f"verdict: {'equal' if equal(result, tolerance) else 'DIFFERENT'} within {tolerance:g} relative")
    return lines


def counted(step, noise_only):
    """A step's variable differences without the noise-only variables and their Adam slots."""
    return {k: v for k, v in step["variables"].items() if k.rsplit("/adam_", 1)[0] not in noise_only}


def equal(result, tolerance):
    values = [result["first"][g]["relative"] for g in GROUPS]
    values += [v for g in GROUPS for v in result["grad"][g].values()]
    for step in result["steps"]:
        values += [step["losses_relative"], *counted(step, set(result["noise_only"])).values()]
    return not result["only_a"] and not result["only_b"] and bool(result["steps"]) and max(values) <= tolerance


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
        tolerance=1e-4, ours_lr_ahead=False, torch_lr_ahead=False):
    """Both sides in their own processes, then the comparison (written to ``<work>/parity_step.json``)."""
    vocab_file, work, hparams = start_work(vocab_file, work, hparams or parity_hparams(), steps, batch_size)
    labels = [f"a_{a}", f"b_{b}"]
    sides = [(labels[0], a, {}), (labels[1], b, b_hparams or {})]
    # A TF side writes the initial checkpoint the others restore; the torch side can only read it.
    for label, system, extra in sorted(sides, key=lambda side: side[1] == "torch"):
        subprocess.check_call([sys.executable, "-m", "experiments.parity_step", "--_side", system, "--_label", label,
                               "--vocab_file", vocab_file, "--work", work, "--upstream_dir", upstream_dir or "",
                               "--steps", str(steps), "--_hparams", json.dumps(dict(hparams, **extra))]
                              + (["--ours_lr_ahead"] if ours_lr_ahead else [])
                              + (["--torch_lr_ahead"] if torch_lr_ahead else []), cwd=ROOT)
    result = compare(*(os.path.join(work, f"step_{label}.npz") for label in labels))
    result.update(a=a, b=b, hparams=hparams, b_hparams=b_hparams or {}, ours_lr_ahead=ours_lr_ahead,
                  torch_lr_ahead=torch_lr_ahead, equal=equal(result, tolerance))
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
    p.add_argument("--torch_lr_ahead", action="store_true", help="the torch side does, too")
    p.add_argument("--tolerance", type=float, default=1e-4)
    p.add_argument("--_side", help=argparse.SUPPRESS)
    p.add_argument("--_label", help=argparse.SUPPRESS)
    p.add_argument("--_hparams", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._side == "torch":
        from experiments.parity_step_torch import run_torch_side

        run_torch_side(args.vocab_file, json.loads(args._hparams), args.work, args._label, args.steps,
                       lr_ahead=args.torch_lr_ahead)
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
                 steps=args.steps, tolerance=args.tolerance, ours_lr_ahead=args.ours_lr_ahead,
                 torch_lr_ahead=args.torch_lr_ahead)
    print("\n".join(summary(result, args.tolerance)))


if __name__ == "__main__":
    main()
