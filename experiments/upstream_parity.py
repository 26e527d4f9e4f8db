"""Learning parity with upstream ELECTRA: ours and google-research/electra's own code, same data.

Both systems pre-train on the same TFRecords with the same hparams, several seeds each, with
a uniform generator (random replacements) and with the real generator. Each trained
checkpoint, ours or upstream's, is then evaluated by our run_pretraining.py (the variable
names are upstream's, so it reads both), which reports upstream's eval metrics and the
real-token ones, and then again with upstream's masking (``mask_with_replacement``), so that
each discriminator is scored once on the masking it trained with. docs/pretraining_parity.md
is written from the runs' own files; ``--evaluate_only`` adds missing evaluations to finished
runs and rewrites it without training.

Upstream's code is not part of this project: point ``--upstream_dir`` at a checkout of
https://github.com/google-research/electra kept outside it. Its one tf.contrib call,
``contrib_layers.layer_norm``, is shimmed below with the same variables and epsilon.

    python -m experiments.upstream_parity --upstream_dir /tmp/electra --work data/parity \
        --nsmc_file ../shared/data/nsmc/ratings_train.txt

``--systems torch`` trains ours with ``run_pretraining.py --backend torch``; its final checkpoint is
then written as a TF one beside it (convert/torch_tf.py), so the same TF evaluations score it.

``--nsmc_file`` builds the issue's data into ``<work>/data`` first (the first 60,000 NSMC
training reviews, each its own document; an 8,000-entry WordPiece vocab; 64-token examples)
with this project's own scripts; ``--data_dir`` uses TFRecords you built instead.
"""
import argparse
import glob
import itertools
import json
import os
import subprocess
import sys
import time
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Issue 13's comparison: ELECTRA-Small width, 4 layers, short sequences, short warmup.
HPARAMS = {
    "model_size": "small", "max_seq_length": 64, "train_batch_size": 32, "eval_batch_size": 32,
    "learning_rate": 5e-4, "num_warmup_steps": 50, "num_train_steps": 1000, "num_eval_steps": 30,
    "iterations_per_loop": 100, "save_checkpoints_steps": 1000, "keep_checkpoint_max": 1,
    "model_hparam_overrides": {"num_hidden_layers": 4, "max_position_embeddings": 128},
}
# Our systems: "ours" as shipped, "ourswr" with upstream's position sampling (with replacement,
# see model/masking.py), to tell whether that one known difference explains a gap, and "torch",
# ours trained by the PyTorch backend (then evaluated, like the others, by the TF evaluation), "torchwr"
# the same with upstream's position sampling.
OUR_SYSTEMS = {"ours": {}, "ourswr": {"mask_with_replacement": True}, "torch": {},
               "torchwr": {"mask_with_replacement": True}}
BACKENDS = {"torch": "torch", "torchwr": "torch"}  # the others train with the TF backend
# real_t2 samples the generator at temperature 2, the setting nsmc_experiment pretrains with (at
# temperature 1 both systems' discriminators collapse with these hparams).
GENERATORS = {"uniform": {"uniform_generator": True}, "real": {"generator_hidden_size": 0.25},
              "real_t2": {"generator_hidden_size": 0.25, "temperature": 2.0}}
METRICS = ["disc_auc_real_tokens", "disc_accuracy_real_tokens", "disc_auc", "disc_accuracy", "disc_precision",
           "disc_recall", "disc_loss", "masked_lm_accuracy", "masked_lm_loss", "sampled_masked_lm_accuracy"]


def install_contrib_shim():
    """``tensorflow.contrib.layers.layer_norm`` as TF 1.15 had it: LayerNorm/{beta,gamma}, epsilon 1e-12."""
    import tensorflow.compat.v1 as tf

    def layer_norm(inputs, begin_norm_axis=-1, begin_params_axis=-1, scope=None):
        with tf.variable_scope(scope, default_name="LayerNorm"):
            width = inputs.shape[-1]
            beta = tf.get_variable("beta", [width], initializer=tf.zeros_initializer())
            gamma = tf.get_variable("gamma", [width], initializer=tf.ones_initializer())
            mean, variance = tf.nn.moments(inputs, [begin_norm_axis], keepdims=True)
            return tf.nn.batch_normalization(inputs, mean, variance, beta, gamma, 1e-12)

    contrib = types.ModuleType("tensorflow.contrib")
    contrib.layers = types.ModuleType("tensorflow.contrib.layers")
    contrib.layers.layer_norm = layer_norm
    sys.modules["tensorflow.contrib"] = contrib
    sys.modules["tensorflow.contrib.layers"] = contrib.layers


def import_upstream(upstream_dir):
    """Upstream's (configure_pretraining, run_pretraining) modules, importable in this process only
    if ours of the same names (and our util package) were never imported here."""
    install_contrib_shim()
    sys.path.insert(0, upstream_dir)
    import configure_pretraining  # upstream's, from upstream_dir
    import run_pretraining

    return configure_pretraining, run_pretraining


def train_upstream(upstream_dir, data_dir, model_dir, hparams):
    """Runs upstream's own train_or_eval in this process (called through --_upstream_train)."""
    configure_pretraining, run_pretraining = import_upstream(upstream_dir)
    config = configure_pretraining.PretrainingConfig(
        os.path.basename(model_dir), data_dir, model_dir=model_dir,
        pretrain_tfrecords=os.path.join(data_dir, "pretrain_data.tfrecord*"),
        vocab_file=os.path.join(data_dir, "vocab.txt"), **hparams)
    run_pretraining.train_or_eval(config)


def vocab_size(data_dir):
    with open(os.path.join(data_dir, "stats.json"), encoding="utf-8") as f:
        return json.load(f)["vocab_size"]


def build_data(nsmc_file, data_dir, reviews=60000):
    """The issue's parity data from an NSMC ratings file (id<TAB>document<TAB>label), by our scripts."""
    if os.path.lexists(os.path.join(data_dir, "vocab.txt")):  # linked last: the data is complete
        return
    corpus_dir = os.path.join(data_dir, "corpus")
    os.makedirs(corpus_dir, exist_ok=True)
    corpus = os.path.join(corpus_dir, "nsmc.txt")
    with open(nsmc_file, encoding="utf-8") as f, open(corpus, "w", encoding="utf-8") as out:
        next(f)  # header
        texts = (line.rstrip("\n").split("\t")[1].strip() for line in f if line.count("\t") == 2)
        for text in itertools.islice(filter(None, texts), reviews):
            out.write(text + "\n\n")  # a blank line ends the document: one review per document
    vocab_dir = os.path.join(data_dir, "vocab")
    run([sys.executable, "build_vocab.py", "--corpus", os.path.join(corpus_dir, "nsmc.txt"), "--vocab_size", "8000",
         "--output_dir", vocab_dir], os.path.join(data_dir, "build_vocab.log"))
    tfrecords = os.path.join(data_dir, "tfrecords")
    run([sys.executable, "build_pretraining_dataset.py", "--corpus_dir", corpus_dir, "--vocab_file", vocab_dir,
         "--output_dir", tfrecords, "--max_seq_length", str(HPARAMS["max_seq_length"]), "--no_progress"],
        os.path.join(data_dir, "build_dataset.log"))
    # Both systems read TFRecords, stats.json and vocab.txt from one directory.
    for name in os.listdir(tfrecords):
        if not os.path.lexists(os.path.join(data_dir, name)):  # a run cut short may have linked some
            os.symlink(os.path.join("tfrecords", name), os.path.join(data_dir, name))
    os.symlink(os.path.join("vocab", "vocab.txt"), os.path.join(data_dir, "vocab.txt"))


def run(command, log_path):
    start = time.time()
    with open(log_path, "w", encoding="utf-8") as log:
        status = subprocess.call(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if status:
        sys.exit(f"failed (exit {status}): {' '.join(command)}; see {log_path}")
    return time.time() - start


# Every checkpoint is evaluated with this seed: the same batches get the same masks and samples,
# so a difference between two runs is their training's. Unseeded, each evaluation drew its own
# masks: six mask seeds on one checkpoint (continued_pretraining's general model, 960 held-out
# examples) moved its MLM loss by a standard deviation of 0.012.
EVAL_SEED = 1000


def evaluation_hparams(hparams, data_dir):
    return dict(hparams, do_train=False, do_eval=True, vocab_file=os.path.join(data_dir, "vocab.txt"), seed=EVAL_SEED)


# Each checkpoint is evaluated a second time with upstream's masking (positions drawn with
# replacement, [CLS] and [SEP] counted; model/masking.py), into this subdirectory: a
# discriminator is scored on the masking it trained with in one of the two, so a gap that
# flips between them is the masking's, not the learning's.
UPSTREAM_MASKING_EVAL = "eval_upstream_masking"


def evaluate_with_upstreams_masking(model_dir, hparams, data_dir):
    """The run's checkpoint (a warm start, so the run's own dir is untouched) on the same
    evaluation batches, masked as upstream masks."""
    eval_dir = os.path.join(model_dir, UPSTREAM_MASKING_EVAL)
    if os.path.exists(os.path.join(eval_dir, "results", "unsup_results.txt")):
        return
    os.makedirs(eval_dir, exist_ok=True)
    evaluation = dict(evaluation_hparams(hparams, data_dir), saved_model=model_dir, mask_with_replacement=True)
    run([sys.executable, "run_pretraining.py", "--backend", "tf", "--data_dir", data_dir, "--model_name", eval_dir,
         "--hparams", json.dumps(evaluation)], os.path.join(model_dir, "eval_upstream_masking.log"))


def write_tf_checkpoint_beside(model_dir):
    """The torch run's final checkpoint as ``model.ckpt-N`` in its own model dir (convert/torch_tf.py: every
    weight bit for bit), where the TF evaluation below and upstream's masking pass read it as any other run's."""
    from pretrain import layout

    if layout.latest_tf_checkpoint(model_dir):
        return
    from convert.torch_tf import torch_to_tf

    with open(os.path.join(model_dir, "convert.log"), "w", encoding="utf-8") as log:
        torch_to_tf(model_dir, model_dir, log=lambda line: print(line, file=log, flush=True))


def train_and_evaluate(system, generator, seed, args):
    """One run; returns its model dir. Training is skipped when its eval results already exist
    (``--evaluate_only``: a run without them is left alone), each evaluation when its own do."""
    model_dir = os.path.join(os.path.abspath(args.work), f"{system}_{generator}_seed{seed}")
    results = os.path.join(model_dir, "results", "unsup_results.txt")
    hparams = dict(HPARAMS, num_train_steps=args.steps, vocab_size=vocab_size(args.data_dir), **GENERATORS[generator])
    if os.path.exists(results):
        evaluate_with_upstreams_masking(model_dir, hparams, args.data_dir)
        return model_dir
    if args.evaluate_only:
        return None
    os.makedirs(model_dir, exist_ok=True)
    log = os.path.join(model_dir, "train.log")
    print(f"[{time.strftime('%H:%M:%S')}] {system} {generator} seed {seed}", flush=True)
    if system in OUR_SYSTEMS:
        ours = dict(hparams, seed=seed, vocab_file=os.path.join(args.data_dir, "vocab.txt"), **OUR_SYSTEMS[system])
        seconds = run([sys.executable, "run_pretraining.py", "--backend", BACKENDS.get(system, "tf"), "--data_dir",
                       args.data_dir, "--model_name", model_dir, "--hparams", json.dumps(ours)], log)
        if BACKENDS.get(system) == "torch":
            write_tf_checkpoint_beside(model_dir)
    else:  # upstream draws its own seeds: each run is a fresh random initialisation
        seconds = run([sys.executable, "-m", "experiments.upstream_parity", "--_upstream_train", "--upstream_dir",
                       args.upstream_dir, "--data_dir", args.data_dir, "--work", model_dir,
                       "--hparams", json.dumps(dict(hparams, do_lower_case=False))], log)
    evaluation = evaluation_hparams(hparams, args.data_dir)
    # The TF backend evaluates every system's checkpoint (a torch run's through its TF copy beside it).
    run([sys.executable, "run_pretraining.py", "--backend", "tf", "--data_dir", args.data_dir, "--model_name",
         model_dir, "--hparams", json.dumps(evaluation)], os.path.join(model_dir, "eval.log"))
    with open(os.path.join(model_dir, "train_seconds.txt"), "w") as f:
        f.write(f"{seconds:.1f}\n")
    evaluate_with_upstreams_masking(model_dir, hparams, args.data_dir)
    return model_dir


def planned_runs(systems, generators, first_seed, seeds):
    """(system, generator, seed) in run order: a generator setting's seeds alternate between the
    systems, so a run cut short leaves the systems with equal counts."""
    return [(system, generator, seed) for generator in generators.split(",")
            for seed in range(first_seed, first_seed + seeds) for system in systems.split(",")]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--upstream_dir", required=True, help="a checkout of google-research/electra")
    p.add_argument("--data_dir", help="TFRecords + stats.json + vocab.txt (build_pretraining_dataset.py output)")
    p.add_argument("--nsmc_file", help="build the data from this NSMC ratings file into <work>/data instead")
    p.add_argument("--work", default="data/parity")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first_seed", type=int, default=1,
                   help="run seeds first_seed .. first_seed+seeds-1, e.g. to split one setting over two processes")
    p.add_argument("--steps", type=int, default=HPARAMS["num_train_steps"])
    p.add_argument("--generators", default="uniform,real")
    p.add_argument("--systems", default="ours,upstream", help="comma-separated: ours, ourswr, torch, torchwr, upstream")
    p.add_argument("--evaluate_only", action="store_true",
                   help="train nothing: add the missing evaluations of the runs that finished, then the report")
    p.add_argument("--hparams", help=argparse.SUPPRESS)
    p.add_argument("--_upstream_train", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._upstream_train:
        train_upstream(os.path.abspath(args.upstream_dir), args.data_dir, args.work, json.loads(args.hparams))
        return
    unknown = sorted(set(args.systems.split(",")) - set(OUR_SYSTEMS) - {"upstream"})
    unknown += sorted(set(args.generators.split(",")) - set(GENERATORS))
    if unknown:
        sys.exit(f"--systems/--generators: unknown {', '.join(unknown)}")
    if not os.path.exists(os.path.join(args.upstream_dir, "run_pretraining.py")):
        sys.exit(f"--upstream_dir {args.upstream_dir}: no run_pretraining.py (a google-research/electra checkout)")
    if args.nsmc_file:
        args.data_dir = os.path.join(args.work, "data")
        build_data(args.nsmc_file, args.data_dir)
    if not args.data_dir or not glob.glob(os.path.join(args.data_dir, "pretrain_data.tfrecord*")):
        sys.exit(f"--data_dir {args.data_dir}: no pretrain_data.tfrecord* files")
    args.data_dir = os.path.abspath(args.data_dir)
    for system, generator, seed in planned_runs(args.systems, args.generators, args.first_seed, args.seeds):
        train_and_evaluate(system, generator, seed, args)
    from experiments.parity_report import write_report

    write_report(args.work, os.path.join(ROOT, "docs", "pretraining_parity.md"), args)


if __name__ == "__main__":
    main()
