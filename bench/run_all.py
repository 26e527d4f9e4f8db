"""Regenerate every benchmark in one run, stage by stage, each rewriting its own section of
docs/benchmarks.md with its command, figures and machine.

    .venv/bin/python -m bench.run_all [--only preprocess,onnx]

Takes about 45 minutes on a quiet 2-core machine. Run it on a machine doing nothing else:
the figures are ratios measured within each benchmark's run, but a busy machine still skews
them (the sections say what load they saw).
"""
import argparse
import subprocess
import sys
import time

# Pipeline order; each entry is the module and the arguments its section was recorded with.
BENCHMARKS = {
    "preprocess": ["bench.bench_preprocess", "--review_fraction", "0.1"],
    "dataset": ["bench.bench_dataset"],
    "tfrecords": ["bench.bench_tfrecords"],
    "pretraining": ["bench.bench_pretraining", "--batch_size", "16", "--rounds", "4", "--steps", "2"],
    "pretraining_distributed": ["bench.bench_pretraining_distributed", "--steps", "60", "--rounds", "2"],
    "onnx": ["bench.bench_onnx"],
    "predict": ["bench.bench_predict"],
    "predict_startup": ["bench.bench_startup"],
    "serve": ["bench.bench_serve"],
    "finetune": ["bench.bench_finetune", "--examples", "256", "--threads", "1"],
    "finetune_ddp": ["bench.bench_finetune_ddp", "--rounds", "3"],
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    args = p.parse_args()
    chosen = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        sys.exit(f"error: unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    failed = []
    for name in chosen:
        start = time.time()
        print(f"== {name}: {' '.join(BENCHMARKS[name])}", flush=True)
        if subprocess.call([sys.executable, "-m", *BENCHMARKS[name]]) != 0:
            failed.append(name)
        print(f"== {name}: {time.time() - start:.0f} s", flush=True)
    if failed:
        sys.exit(f"error: benchmark(s) failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
