"""The real experiment: does our pretraining teach a model Korean? Measured on NSMC and KorSTS.

Runs the whole chain through the real command-line scripts on real data:
stage the corpus (experiments/stage_corpus.py: NSMC's crawled reviews minus its test set,
plus dialogue and written text) -> preprocess.py -> build_vocab.py -> build_pretraining_dataset.py
(packed: one-line reviews fill whole examples) -> run_pretraining.py -> pytorch_convert.py ->
run_finetune.py for (a) our pretrained discriminator and (b) the same architecture from random
initialisation, several seeds each, same settings, on NSMC and KorSTS.
experiments/make_results.py then writes docs/results.md from the runs' own files.

    .venv/bin/python -m experiments.nsmc_experiment --work data/experiment --steps 6000 --max_reviews 300000

Every stage is skipped when its output exists, so a rerun continues where it stopped
(pretraining resumes from its last checkpoint).
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import threading
import time

from experiments.stage_corpus import SHARED, stage_corpus
from experiments.task_table import finished, random_init_copy
from util.files import atomic_write, write_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMINGS_LOCK = threading.Lock()

# ELECTRA at Small width (hidden 256, embedding 128, 4 heads) with 4 layers so a CPU budget buys
# enough steps, upstream ELECTRA-Small's 0.25-width generator, packed examples of 64 tokens (the
# fine-tuning length; most documents are one short review). The schedule and the sampling
# temperature come from pilots on this corpus (docs/pretraining.md, "When the discriminator
# collapses"): at temperature 1 the real-token AUC fell as soon as the generator learned token
# frequencies (lr 5e-4 warmup 1000 from step 150, 1e-4 / 1000 and 2e-4 / 2000 from ~600), and the
# monitor fired; temperature 2 keeps the generator's samples wide enough for the discriminator to
# go on learning. The published recipe (10k warmup, batch 512, lr 1e-4) is out of a CPU's reach.
PRETRAIN_HPARAMS = {
    "model_size": "small", "hidden_size": 256, "embedding_size": 128, "num_attention_heads": 4,
    "intermediate_size": 1024, "num_hidden_layers": 4, "generator_hidden_size": 0.25,
    "max_seq_length": 64, "model_hparam_overrides": {"max_position_embeddings": 64},
    "train_batch_size": 32, "eval_batch_size": 64, "learning_rate": 2e-4, "num_warmup_steps": 2000,
    "temperature": 2.0, "save_checkpoints_steps": 250, "iterations_per_loop": 50, "keep_checkpoint_max": 3,
    "num_eval_steps": 50, "do_eval": True, "seed": 13,
}
# Fine-tuning: fixed subsets and fewer epochs than the published configs, to fit the CPU. The rate
# is the ELECTRA paper's for Small (3e-4) with upstream's 10 % warmup (configure_finetuning.py), not
# the published YAMLs' 5e-5 without warmup: in one epoch 1e-4 under-trained these 4-layer models
# (2-core development machine, commit c3bb21c: NSMC 75-76 for both), and 5e-4 without warmup left one random-init seed of two at
# chance (50.44 for all of training).
FINETUNE = {
    "nsmc": {"config": "conf/nsmc/electra-small.yaml", "files": ("ratings_train.txt", "ratings_test.txt"),
             "set": {"num_train_epochs": 1, "max_seq_len": 64, "learning_rate": 3e-4, "warmup_proportion": 0.1,
                     "logging_steps": 200, "save_steps": 200}},
    "korsts": {"config": "conf/korsts/electra-small.yaml", "files": ("sts-train.tsv", "sts-dev.tsv", "sts-test.tsv"),
               "set": {"num_train_epochs": 3, "max_seq_len": 64, "learning_rate": 3e-4, "warmup_proportion": 0.1,
                       "logging_steps": 60, "save_steps": 60}},
}


def run(stage, command, work, log_name=None):
    """Run one script; its output goes to <work>/logs/<stage>.log and its time to timings.json."""
    logs = os.path.join(work, "logs")
    os.makedirs(logs, exist_ok=True)
    log_path = os.path.join(logs, (log_name or stage) + ".log")
    print(f"[{time.strftime('%H:%M:%S')}] {stage}: {' '.join(command)}", flush=True)
    start = time.time()
    with open(log_path, "w", encoding="utf-8") as log:
        status = subprocess.call(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if status != 0:
        sys.exit(f"{stage} failed (exit {status}); see {log_path}")
    with TIMINGS_LOCK:  # fine-tuning runs finish in parallel threads
        timings_path = os.path.join(work, "timings.json")
        timings = json.load(open(timings_path)) if os.path.exists(timings_path) else {}
        timings[log_name or stage] = round(time.time() - start, 1)
        write_json(timings_path, timings)
    return log_path


def run_all(jobs, work, parallel):
    """Run ``(name, command)`` jobs, ``parallel`` at a time (one thread each); the first failure stops."""
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        for future in [pool.submit(run, name, command, work) for name, command in jobs]:
            future.result()


def nsmc_subset(source, target, limit):
    """The first ``limit`` reviews of an NSMC file (header kept): a fixed, documented subset."""
    with open(source, encoding="utf-8") as src, atomic_write(target) as dst:
        for i, line in enumerate(src):
            if limit and i > limit:
                break
            dst.write(line)


def finetune_data(work, args):
    """Task data directories: a fixed NSMC subset (first N reviews) and KorSTS whole."""
    dirs = {"nsmc": os.path.join(work, "data", "nsmc"), "korsts": os.path.join(work, "data", "korsts")}
    os.makedirs(dirs["nsmc"], exist_ok=True)
    nsmc_subset(os.path.join(SHARED, "nsmc", "ratings_train.txt"), os.path.join(dirs["nsmc"], "ratings_train.txt"),
                args.nsmc_train)
    nsmc_subset(os.path.join(SHARED, "nsmc", "ratings_test.txt"), os.path.join(dirs["nsmc"], "ratings_test.txt"),
                args.nsmc_test)
    os.makedirs(dirs["korsts"], exist_ok=True)
    for name in FINETUNE["korsts"]["files"]:
        shutil.copy(os.path.join(SHARED, "korsts", name), os.path.join(dirs["korsts"], name))
    return dirs


def run_finetune_command(config_file, settings):
    """run_finetune.py on a shipped YAML, every setting passed as --set key=value."""
    command = [sys.executable, "run_finetune.py", "--config_file", config_file]
    for key, value in settings.items():
        command += ["--set", f"{key}={value}"]
    return command


def finetune_command(task, model, data_dir, out, seed):
    spec = FINETUNE[task]
    return run_finetune_command(spec["config"], dict(spec["set"], task=f"{task}_experiment", data_dir=data_dir,
                                                     ckpt_dir=out, model_name_or_path=model, seed=seed,
                                                     no_cuda=True, num_threads=1))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="data/experiment")
    p.add_argument("--steps", type=int, default=6000, help="pretraining steps")
    p.add_argument("--vocab_size", type=int, default=32000)
    p.add_argument("--max_reviews", type=int, default=None, help="fewer crawled reviews, for a quick trial")
    p.add_argument("--nsmc_train", type=int, default=20000, help="NSMC training reviews used (first N)")
    p.add_argument("--nsmc_test", type=int, default=5000, help="NSMC test reviews used (first N)")
    p.add_argument("--seeds", type=int, default=3, help="fine-tuning seeds per model and task")
    p.add_argument("--tasks", default="nsmc,korsts")
    p.add_argument("--parallel", type=int, default=2, help="fine-tuning runs at once (one thread each)")
    p.add_argument("--num_processes", type=int, default=2)
    p.add_argument("--stop_after", choices=["dataset", "pretrain", "convert"], help="stop after this stage")
    args = p.parse_args()
    work = os.path.abspath(args.work)
    py = sys.executable
    raw, corpus_dir = os.path.join(work, "raw"), os.path.join(work, "corpus")
    vocab_dir, tfrecords = os.path.join(work, "vocab"), os.path.join(work, "tfrecords")
    model_dir, pt_dir = os.path.join(work, "model"), os.path.join(work, "pytorch")

    if not os.path.exists(os.path.join(work, "corpus_sources.json")):
        shutil.rmtree(raw, ignore_errors=True)
        stage_corpus(raw, max_reviews=args.max_reviews)
    corpus_file = os.path.join(corpus_dir, "corpus.txt")
    if not os.path.exists(corpus_file):
        run("preprocess", [py, "preprocess.py", "--corpus_dir", raw, "--output_file", corpus_file,
                           "--num_processes", str(args.num_processes), "--quiet"], work)
    if not os.path.exists(os.path.join(vocab_dir, "vocab.txt")):
        # Plain wordpiece, cased: the tokenizer every stage and transformers' AutoTokenizer agree on.
        run("build_vocab", [py, "build_vocab.py", "--corpus", corpus_file, "--tokenizer", "wordpiece",
                            "--vocab_size", str(args.vocab_size), "--output_dir", vocab_dir,
                            "--num_processes", str(args.num_processes)], work)
    if not os.path.exists(os.path.join(tfrecords, "stats.json")):
        # Most documents are one review of ~20 tokens: without packing 80 % of each example is padding.
        run("dataset", [py, "build_pretraining_dataset.py", "--corpus_dir", corpus_dir, "--vocab_file", vocab_dir,
                        "--output_dir", tfrecords, "--max_seq_length", str(PRETRAIN_HPARAMS["max_seq_length"]),
                        "--no-blanks-separate-docs", "--num_processes", str(args.num_processes),
                        "--no_progress"], work)
    if args.stop_after == "dataset":
        return

    hparams_path = os.path.join(work, "pretrain_hparams.json")
    if not os.path.exists(hparams_path):
        write_json(hparams_path, dict(PRETRAIN_HPARAMS, vocab_file=vocab_dir, num_train_steps=args.steps))
    hparams = json.load(open(hparams_path))
    if not os.path.exists(os.path.join(model_dir, "results", "unsup_results.txt")):
        run("pretrain", [py, "run_pretraining.py", "--data_dir", tfrecords, "--model_name", model_dir,
                         "--hparams", json.dumps(hparams)], work)
    if args.stop_after == "pretrain":
        return

    disc = os.path.join(pt_dir, "discriminator")
    if not os.path.exists(os.path.join(disc, "config.json")):
        run("convert", [py, "pytorch_convert.py", "--tf_ckpt_path", model_dir, "--pt_discriminator_path", disc,
                        "--pt_generator_path", os.path.join(pt_dir, "generator")], work)
    if args.stop_after == "convert":
        return
    seeds = list(range(1, args.seeds + 1))
    models = {"pretrained": {seed: disc for seed in seeds}, "random_init": {}}
    for seed in seeds:
        random_dir = os.path.join(pt_dir, f"random_init_seed{seed}")
        if not os.path.exists(os.path.join(random_dir, "config.json")):
            random_init_copy(disc, random_dir, seed)
        models["random_init"][seed] = random_dir

    data_dirs = finetune_data(work, args)
    jobs = []
    for task in args.tasks.split(","):
        for seed in seeds:
            for name, by_seed in models.items():
                out = os.path.join(work, "finetune", task, f"{name}_seed{seed}")
                # results.json is rewritten at every evaluation: only a final one marks a finished run.
                if finished(os.path.join(out, f"{task}_experiment", "results.json")):
                    continue
                jobs.append((f"finetune_{task}_{name}_seed{seed}",
                             finetune_command(task, by_seed[seed], data_dirs[task], out, seed)))
    run_all(jobs, work, args.parallel)
    write_json(os.path.join(work, "experiment_args.json"), vars(args))
    print(f"done; now: {py} -m experiments.make_results --work {args.work}")


if __name__ == "__main__":
    main()
