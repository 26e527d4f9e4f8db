"""What checking every TFRecord's checksums at the start of pretraining costs (docs/dataset.md).

    .venv/bin/python -m bench.bench_record_check --data_dir DIR

Over the shards of a built dataset (read only), three checks, each repeated in alternation
and the median kept:
(1) the start check every run makes (pretrain/damage_check.check_shards: each shard's size
    against stats.json, or its last record's checksums when stats.json has no entry);
(2) ``verify_records``: every record's length and data crc32c (damage_check.find_damaged,
    pretrain/tfrecords.py's reader, as the torch backend reads);
(3) the floor of any full check: each file read in 8 MB blocks and crc32c'd whole
    (google-crc32c), no record framing.
(4) for scale, the start of a pretraining run on the same dataset (``--train_steps``, the
    TF backend, ELECTRA-Small as published, batch 16, model dir in a temporary directory):
    seconds from launching run_pretraining.py to its first step-log line, and per step after.
The files are in the page cache after the first round: the rates are CPU-bound and say what
the check costs beyond reading the data from disk once (which, on a cold cache, adds the
time a read of the dataset takes at the disk's rate). The rate extrapolates to a realistic
corpus (10-30 GB of shards).
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import google_crc32c

BLOCK_BYTES = 8 << 20


def clocked(fn):
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def crc_whole_files(files):
    for path in files:
        checksum = google_crc32c.Checksum()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(BLOCK_BYTES), b""):
                checksum.update(block)
        checksum.digest()


def training_start(data_dir, steps):
    """(seconds to the first step-log line, seconds per step after it) of a short TF run."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    hparams = {"model_size": "small", "train_batch_size": 16, "num_train_steps": steps, "iterations_per_loop": 1,
               "save_checkpoints_steps": 10 * steps, "num_warmup_steps": 0}
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, os.path.join(root, "run_pretraining.py"), "--backend", "tf", "--data_dir",
                   data_dir, "--model_name", os.path.join(scratch, "model"), "--hparams", json.dumps(hparams)]
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        stamps = [time.perf_counter() for line in process.stdout if line.startswith("train step ")]
        if process.wait() != 0 or len(stamps) < 2:
            raise SystemExit(f"the training run failed: {' '.join(command)}")
    return stamps[0] - start, (stamps[-1] - stamps[0]) / (len(stamps) - 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="a dataset build_pretraining_dataset.py wrote")
    parser.add_argument("--max_seq_length", type=int, help="default: the dataset's (stats.json), else 128")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train_steps", type=int, default=6, help="steps of the training run for scale (0: none)")
    parser.add_argument("--no_report", action="store_true", help="print only, leave docs/benchmarks.md alone")
    args = parser.parse_args()
    from bench.report import write_section
    from pretrain import damage_check, input_pipeline

    files = sorted(glob.glob(os.path.join(args.data_dir, "pretrain_data.tfrecord*")))
    if not files:
        raise SystemExit(f"no pretrain_data.tfrecord* in {args.data_dir}")
    stats_path, stats = input_pipeline.read_stats(files)
    args.max_seq_length = args.max_seq_length or (stats or {}).get("max_seq_length", 128)
    total = sum(os.path.getsize(f) for f in files)
    records = (stats or {}).get("examples")

    cases = {
        "start check (sizes)": lambda: damage_check.check_shards(files, stats, stats_path, args.max_seq_length),
        "every record's crc32c": lambda: damage_check.find_damaged(files, args.max_seq_length),
        "whole-file crc32c": lambda: crc_whole_files(files),
    }
    times = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, fn in cases.items():
            times[name].append(clocked(fn))
    median = {name: (statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts))
              for name, ts in times.items()}
    full = median["every record's crc32c"][1]
    rows = []
    for name, (cpu, wall) in median.items():
        rate, cpu_rate = total / max(wall, 1e-9) / 1e6, total / max(cpu, 1e-9) / 1e6
        rows.append(f"| {name} | {wall * 1e3:,.1f} | {cpu * 1e3:,.1f} | {rate:,.0f} | {cpu_rate:,.0f} | "
                    f"{30e3 / rate / 60:,.1f} | {30e3 / cpu_rate / 60:,.1f} | {wall / full:.3f}x |")
    scale = []
    if args.train_steps:
        first, per_step = training_start(args.data_dir, args.train_steps)
        scale = ["", f"For scale, a pretraining run on this dataset (TF backend, ELECTRA-Small as published, batch 16, "
                 f"fp32, this CPU) printed its first step-log line {first:.1f} s after launch (imports, checks, "
                 f"graph, the first two steps) and took {per_step:.2f} s per step after it. Checking every record "
                 f"of 30 GB at the rate above takes as long as {30e9 / (total / full) / per_step:,.0f} such steps, at "
                 "every start."]
    body = "\n".join([
        f"{len(files)} shards, {total / 1e6:.1f} MB{f', {records:,} records' if records else ''} "
        f"({os.path.abspath(args.data_dir)}, read only); median of {args.rounds} rounds in alternation, files in "
        "the page cache (CPU-bound: a cold cache adds one read of the data at the disk's rate).",
        "",
        "| check | wall ms | CPU ms | MB/s (wall) | MB per CPU-s | minutes for 30 GB (wall) | CPU minutes for 30 GB "
        "| wall / every record's |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        *scale,
        "",
        "Choice (docs/dataset.md, \"Damaged shards\"): every run makes the start check; `verify_records` "
        "(an hparam, off by default) adds the full check before the graph is built.",
    ])
    if args.no_report:
        print(body)
    else:
        write_section("record_check", "Checking every TFRecord's checksums at the start of pretraining",
                      f".venv/bin/python -m bench.bench_record_check --data_dir {args.data_dir}", body)


if __name__ == "__main__":
    main()
