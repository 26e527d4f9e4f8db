"""predict.py's start-up: time to the first answer, PyTorch vs --onnx (onnxruntime, tokenizers, numpy only).

    .venv/bin/python -m bench.bench_startup [--runs 5] [--no-write]

The ELECTRA-Small-shaped NSMC classifier of bench/bench_predict.py (``mecab_wordpiece`` vocab
learned from NSMC training reviews, random weights) is saved and exported with
``convert.onnx_export``. predict.py is then started ``--runs`` times per runtime with one real
NSMC test review on standard input, which stays open, and the time from the process's start to
its first output line is taken: interpreter start, imports, loading the model and tokenizer, and
one prediction. The figure is the median; the runs alternate between the runtimes so that load
on the machine falls on both alike.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def first_answer_seconds(command, line):
    """Seconds from starting ``command`` to its first line on standard output, and that line."""
    env = dict(os.environ, USE_TF="0", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    start = time.perf_counter()
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               cwd=ROOT, env=env)
    process.stdin.write(line.encode() + b"\n")
    process.stdin.flush()
    answer = process.stdout.readline()
    seconds = time.perf_counter() - start
    process.stdin.close()
    process.wait(timeout=120)
    return seconds, answer.decode()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write", action=argparse.BooleanOptionalAction, default=True,
                        help="write the section of docs/benchmarks.md (default on)")
    args = parser.parse_args()
    from bench.bench_predict import make_classifier_dir, nsmc_documents
    from convert.onnx_export import export_finetuned

    review = nsmc_documents("ratings_test.txt", 1)[0]
    times = {"PyTorch": [], "onnxruntime": []}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = make_classifier_dir(os.path.join(tmp, "nsmc"))
        onnx_path, _ = export_finetuned(model_dir, log=lambda _: None)
        base = [sys.executable, os.path.join(ROOT, "predict.py"), "--model_dir", model_dir, "--threads", "1"]
        answers = {}
        for run in range(args.runs):
            for runtime in times:
                command = base + (["--onnx", onnx_path] if runtime == "onnxruntime" else [])
                seconds, answers[runtime] = first_answer_seconds(command, review)
                times[runtime].append(seconds)
                print(f"run {run + 1}, {runtime}: first answer after {seconds:.2f} s", flush=True)
    load_after = os.getloadavg()
    import json

    agree = json.loads(answers["PyTorch"])["label"] == json.loads(answers["onnxruntime"])["label"]
    medians = {k: statistics.median(v) for k, v in times.items()}
    body = [
        "Seconds from starting `predict.py --threads 1` to its first output line, one NSMC test review on "
        "standard input (kept open): interpreter start, imports, loading model and tokenizer, one prediction. "
        "The model is bench_predict's ELECTRA-Small-shaped NSMC classifier (`mecab_wordpiece` vocab, random "
        f"weights); `--onnx` imports onnxruntime, tokenizers and numpy only (no torch, no transformers). "
        f"Median of {args.runs} runs per runtime, alternating; both gave the same label: {'yes' if agree else 'NO'}.",
        "",
        f"Load average (1 / 5 / 15 min) {' / '.join(f'{x:.1f}' for x in load_before)} at the start and "
        f"{' / '.join(f'{x:.1f}' for x in load_after)} at the end, on {os.cpu_count()} cores shared with other jobs.",
        "",
        "| runtime | first answer, median (s) | fastest (s) | slowest (s) | PyTorch / this |",
        "|---|---|---|---|---|",
    ]
    for runtime, values in times.items():
        body.append(f"| {runtime} | {medians[runtime]:.2f} | {min(values):.2f} | {max(values):.2f} | "
                    f"{medians['PyTorch'] / medians[runtime]:.2f}x |")
    if args.write:
        from bench.report import write_section

        write_section("predict_startup", "predict.py start-up: PyTorch vs --onnx",
                      "python -m bench.bench_startup", "\n".join(body))
    else:
        print("\n".join(body))


if __name__ == "__main__":
    main()
