"""Dropout in both pretraining graphs: where it is applied, and what it does to the losses.

    python -m experiments.parity_dropout --upstream_dir /tmp/electra --vocab_file data/parity/data/vocab.txt \
        --work data/parity/dropout

experiments/parity_step.py compares the graphs with dropout off, so it cannot see a dropout
placed differently. Here each side (ours, upstream ELECTRA's own code) builds the parity
model with the parity runs' dropout (0.1) in a process of its own, restores one checkpoint
(the first side writes it), and records

- its dropout census: every dropout mask the graph draws, as (scope, mask shape), with the
  name scopes' ``_N`` uniquifiers dropped (the two codes build the same scopes in different
  orders); and
- ``--draws`` evaluations of the first fixed batch (parity_step's batches: the same masks and
  generator samples fed to both), each with fresh dropout: the MLM and discriminator losses.

Equal censuses and loss distributions whose means differ by no more than chance (Welch's z)
mean that dropout is applied at the same places with the same rate.
"""
import argparse
import collections
import json
import math
import os
import re
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARITY_DROPOUT = {"hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}


def dropout_hparams():
    """parity_step's model (the parity runs' size and real generator) with the runs' dropout back on."""
    from experiments.parity_step import parity_hparams

    hparams = parity_hparams()
    hparams["model_hparam_overrides"] = dict(hparams["model_hparam_overrides"], **PARITY_DROPOUT)
    return hparams


DROPOUT_SCOPE = re.compile(r"^dropout(_\d+)?$")


def normalized_scope(op_name):
    """'electra/embeddings_3/dropout/random_uniform/RandomUniform' -> 'electra/embeddings'."""
    parts = op_name.split("/")
    cut = next((i for i, p in enumerate(parts) if DROPOUT_SCOPE.match(p)), len(parts) - 1)
    return "/".join(p if p.startswith("layer_") else re.sub(r"_\d+$", "", p) for p in parts[:cut])


def run_side(system, upstream_dir, vocab_file, work, label, hparams, draws):
    import tensorflow.compat.v1 as tf

    from experiments.parity_step import build_side, restored_session

    data = np.load(os.path.join(work, "batches.npz"))
    checkpoint = os.path.join(work, "init", "model.ckpt")
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        feeds = {k: tf.placeholder(tf.as_dtype(data[k].dtype), data[k].shape[1:], name=k) for k in data.files}
        config, total, mlm, _, _ = build_side(system, upstream_dir, vocab_file, hparams, feeds)
        disc = (total - config.gen_weight * mlm) / config.disc_weight
        census = sorted(f"{normalized_scope(op.name)} {op.outputs[0].shape.as_list()}"
                        for op in tf.get_default_graph().get_operations()
                        if op.type == "RandomUniform" and any(DROPOUT_SCOPE.match(p) for p in op.name.split("/")))
        tvars = tf.trainable_variables()
        saver = tf.train.Saver({v.op.name: v for v in tvars})
        with restored_session(saver, checkpoint) as sess:
            batch = {feeds[k]: data[k][0] for k in data.files}
            losses = np.array([sess.run([mlm, disc], batch) for _ in range(draws)])
    # Not util.files.atomic_write: on the upstream side ``util`` is upstream's package.
    out = os.path.join(work, f"dropout_{label}.npz")
    with open(out + ".tmp", "wb") as f:
        np.savez(f, losses=losses, census=np.array(census))
    os.replace(out + ".tmp", out)


def welch_z(a, b):
    se = math.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b))
    return float((np.mean(a) - np.mean(b)) / se) if se else 0.0


def compare(work):
    """Side a against side b: their dropout censuses, and each loss's mean ± std over the draws."""
    sides = {s: np.load(os.path.join(work, f"dropout_{s}.npz")) for s in ("a", "b")}
    census = {s: collections.Counter(d["census"].tolist()) for s, d in sides.items()}
    result = {"census": {s: sorted(c.items()) for s, c in census.items()},
              "census_equal": census["a"] == census["b"], "losses": {}}
    for i, name in enumerate(("mlm_loss", "disc_loss")):
        a, b = sides["a"]["losses"][:, i], sides["b"]["losses"][:, i]
        result["losses"][name] = {"a": [float(a.mean()), float(a.std(ddof=1))],
                                  "b": [float(b.mean()), float(b.std(ddof=1))], "welch_z": welch_z(a, b),
                                  "draws": len(a)}
    return result


def run(vocab_file, work, upstream_dir, draws=300, a="ours", b="upstream", hparams=None, b_hparams=None):
    """Both sides in their own processes, then the comparison (written to ``<work>/parity_dropout.json``);
    ``b_hparams`` changes side b only (e.g. a test that a moved dropout shows)."""
    from experiments.parity_step import start_work
    from util.files import write_json

    vocab_file, work, hparams = start_work(vocab_file, work, hparams or dropout_hparams(), steps=1)
    for label, system, side_hparams in (("a", a, hparams), ("b", b, dict(hparams, **(b_hparams or {})))):
        subprocess.check_call([sys.executable, "-m", "experiments.parity_dropout", "--_side", system, "--_label", label,
                               "--vocab_file", vocab_file, "--work", work, "--upstream_dir", upstream_dir or "",
                               "--draws", str(draws), "--_hparams", json.dumps(side_hparams)], cwd=ROOT)
    result = dict(compare(work), a=a, b=b, hparams=hparams, b_hparams=b_hparams or {})
    write_json(os.path.join(work, "parity_dropout.json"), result)
    return result


def summary(result):
    a, b = result["a"], result["b"]
    census = result["census"]["a"]
    lines = [f"dropout census: {'equal' if result['census_equal'] else 'DIFFERENT'} "
             f"({sum(n for _, n in census)} masks in {a}: " + "; ".join(f"{n} x {scope}" for scope, n in census) + ")"]
    for name, r in result["losses"].items():
        lines.append(f"{name} over {r['draws']} dropout draws: {a} {r['a'][0]:.5f} ± {r['a'][1]:.5f}, "
                     f"{b} {r['b'][0]:.5f} ± {r['b'][1]:.5f} (Welch z {r['welch_z']:+.2f})")
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--upstream_dir", required=True, help="a checkout of google-research/electra")
    p.add_argument("--vocab_file", required=True, help="vocab.txt (the parity data's, or any WordPiece vocab)")
    p.add_argument("--work", default="data/parity/dropout")
    p.add_argument("--draws", type=int, default=300, help="evaluations of the batch per side, each with fresh dropout")
    p.add_argument("--_side", help=argparse.SUPPRESS)
    p.add_argument("--_label", help=argparse.SUPPRESS)
    p.add_argument("--_hparams", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._side:
        run_side(args._side, os.path.abspath(args.upstream_dir), args.vocab_file, args.work, args._label,
                 json.loads(args._hparams), args.draws)
        return
    if not os.path.exists(os.path.join(args.upstream_dir, "run_pretraining.py")):
        sys.exit(f"--upstream_dir {args.upstream_dir!r}: no run_pretraining.py (a google-research/electra checkout)")
    if not os.path.isfile(args.vocab_file):
        sys.exit(f"--vocab_file {args.vocab_file}: no such file")
    print("\n".join(summary(run(args.vocab_file, args.work, os.path.abspath(args.upstream_dir), args.draws))))


if __name__ == "__main__":
    main()
