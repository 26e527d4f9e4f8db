"""Initial variables, ours against upstream ELECTRA's own graph: names, shapes and value statistics.

    python -m experiments.parity_init --upstream_dir /tmp/electra --vocab_file VOCAB --work data/parity

Each system builds its PretrainingModel in a process of its own (both have top-level modules
named ``configure_pretraining`` and ``model``) with the parity runs' hparams and the real
generator, initialises it and writes ``<work>/init_<system>.json``: per variable its shape,
mean and standard deviation. experiments/parity_report.py compares the two. Issue 13's
collapse came from two initialisers (a unit test pins those); this checks every variable
against upstream's code itself.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH, SEQ = 8, 64


def build_config(system, upstream_dir, vocab_file):
    from experiments.upstream_parity import GENERATORS, HPARAMS, import_upstream

    with open(vocab_file, encoding="utf-8") as f:
        vocab_size = sum(1 for _ in f)
    hparams = dict(HPARAMS, **GENERATORS["real"], vocab_file=vocab_file, vocab_size=vocab_size)
    data_dir = os.path.dirname(vocab_file)
    if system == "upstream":
        configure_pretraining, run_pretraining = import_upstream(upstream_dir)
        return configure_pretraining.PretrainingConfig("init", data_dir, **hparams), run_pretraining.PretrainingModel
    from configure_pretraining import PretrainingConfig
    from model.electra_model import PretrainingModel
    from util.tokenization import KoTokenizer

    config = PretrainingConfig("init", data_dir, **hparams)
    config.validate()
    config.attach_vocab(KoTokenizer.from_vocab(vocab_file, "wordpiece", False))
    return config, PretrainingModel


def dump_variables(system, upstream_dir, vocab_file, out_path, seed=0):
    """Build, initialise and describe every variable of ``system``'s pretraining graph."""
    import numpy as np
    import tensorflow.compat.v1 as tf

    config, model_class = build_config(system, upstream_dir, vocab_file)
    rng = np.random.RandomState(seed)
    ids = rng.randint(5, config.vocab_size, size=(BATCH, SEQ)).astype(np.int32)
    with tf.Graph().as_default():
        tf.set_random_seed(seed)
        features = {"input_ids": tf.constant(ids), "input_mask": tf.ones((BATCH, SEQ), tf.int32),
                    "segment_ids": tf.zeros((BATCH, SEQ), tf.int32)}
        model_class(config, features, is_training=True)
        variables = tf.global_variables()
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            values = session.run(variables)
    # Not util.files.write_json: upstream's code has a top-level package named util too.
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path + ".tmp", "w", encoding="utf-8") as f:
        json.dump({v.op.name: {"shape": list(x.shape), "mean": float(x.mean()), "std": float(x.std())}
                   for v, x in zip(variables, values)}, f, indent=1)
    os.replace(out_path + ".tmp", out_path)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--upstream_dir", required=True, help="a checkout of google-research/electra")
    p.add_argument("--vocab_file", required=True)
    p.add_argument("--work", default="data/parity")
    p.add_argument("--_system", choices=["ours", "upstream"], help=argparse.SUPPRESS)
    args = p.parse_args()
    out = lambda system: os.path.join(os.path.abspath(args.work), f"init_{system}.json")  # noqa: E731
    if args._system:
        dump_variables(args._system, os.path.abspath(args.upstream_dir), os.path.abspath(args.vocab_file),
                       out(args._system))
        return
    for system in ("ours", "upstream"):
        subprocess.check_call([sys.executable, "-m", "experiments.parity_init", "--_system", system,
                               "--upstream_dir", args.upstream_dir, "--vocab_file", args.vocab_file,
                               "--work", args.work], cwd=ROOT)
    from experiments.parity_report import compare_init

    print("\n".join(compare_init(args.work)))


if __name__ == "__main__":
    main()
