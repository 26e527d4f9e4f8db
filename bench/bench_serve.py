"""serve.py under load on loopback: throughput and p50/p99 latency at 1, 8 and 32 concurrent clients.

    .venv/bin/python -m bench.bench_serve [--requests 160] [--clients 1,8,32] [--no-write]

bench/bench_predict.py's ELECTRA-Small-shaped NSMC classifier (``mecab_wordpiece`` vocab learned
from NSMC training reviews, random weights) is served twice by one ``serve.py`` on 127.0.0.1 —
``torch`` through PyTorch and ``onnx`` through its ONNX file — with ``--threads 1``. For each
number of clients, that many threads each send requests of one real NSMC test review (httpx,
one connection per thread) until ``--requests`` requests have been answered; latency is per
request, throughput is requests answered per second of wall time, and the server's own counts
(``GET /models``) give the requests it predicted together per batch. The ceiling is the in-process
API (``Predictor.predict``, no HTTP) on the same reviews with the same thread: one review per
call for latency, the whole set in batches of 32 for throughput. Every run is bounded by its
request count and a time limit, and talks to loopback only.
"""
import argparse
import concurrent.futures
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def load(url, reviews, clients, requests, limit_seconds=600):
    """(requests/s, p50 ms, p99 ms, labels by review) for ``clients`` threads sending one review each call."""
    import httpx

    latencies, labels = [], {}
    deadline = time.monotonic() + limit_seconds

    def client_loop(k):
        with httpx.Client(timeout=120) as client:
            for i in range(k, requests, clients):
                if time.monotonic() > deadline:
                    return
                review = reviews[i % len(reviews)]
                start = time.perf_counter()
                response = client.post(url, json={"inputs": [review]})
                latencies.append(time.perf_counter() - start)
                response.raise_for_status()
                labels[review] = response.json()["predictions"][0]["label"]

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(client_loop, range(clients)))
    wall = time.perf_counter() - start
    return len(latencies) / wall, 1000 * percentile(latencies, 50), 1000 * percentile(latencies, 99), labels


def in_process(predictor, reviews, requests):
    """The ceiling: (reviews/s in batches of 32, p50 ms, p99 ms of one review per call)."""
    predictor.predict(reviews[:64])
    start = time.perf_counter()
    predictor.predict(reviews)
    throughput = len(reviews) / (time.perf_counter() - start)
    latencies = []
    for i in range(requests):
        start = time.perf_counter()
        predictor.predict([reviews[i % len(reviews)]])
        latencies.append(time.perf_counter() - start)
    return throughput, 1000 * percentile(latencies, 50), 1000 * percentile(latencies, 99)


def batching(base, name):
    """The server's batching counts for one model (GET /models)."""
    import httpx

    return {m["name"]: m for m in httpx.get(base + "/models", timeout=30).json()["models"]}[name]["batching"]


def wait_ready(base, process, seconds=600):
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"serve.py exited with {process.returncode}")
        try:
            if httpx.get(base + "/ready", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit("serve.py was not ready in time")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=160, help="requests per runtime and client count")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--write", action=argparse.BooleanOptionalAction, default=True,
                        help="write the section of docs/benchmarks.md (default on)")
    args = parser.parse_args()
    from bench.bench_predict import make_classifier_dir, nsmc_documents
    from convert.onnx_export import export_finetuned
    from finetune.inference import Predictor

    client_counts = [int(c) for c in args.clients.split(",")]
    reviews = nsmc_documents("ratings_test.txt", 1000)
    rows, agree = [], True
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = make_classifier_dir(os.path.join(tmp, "nsmc"))
        onnx_path, _ = export_finetuned(model_dir, log=lambda _: None)
        for runtime, onnx in (("PyTorch", None), ("onnxruntime", onnx_path)):
            throughput, p50, p99 = in_process(Predictor(model_dir, onnx_path=onnx, threads=1), reviews, args.requests)
            rows.append((runtime, "in-process API (ceiling)", 1, throughput, p50, p99, None))
            print(rows[-1], flush=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = dict(os.environ, USE_TF="0", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
        server = subprocess.Popen([sys.executable, os.path.join(ROOT, "serve.py"), "--port", str(port), "--threads",
                                   "1", "--model", f"torch={model_dir}", "--model", f"onnx={model_dir}", "--onnx",
                                   f"onnx={onnx_path}"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base, server)
            for runtime, name in (("PyTorch", "torch"), ("onnxruntime", "onnx")):
                url = f"{base}/models/{name}/predict"
                load(url, reviews, 4, 16)  # warm-up
                labels = None
                for clients in client_counts:
                    before = batching(base, name)
                    throughput, p50, p99, got = load(url, reviews, clients, args.requests)
                    after = batching(base, name)
                    per_batch = (after["requests"] - before["requests"]) / max(after["batches"] - before["batches"], 1)
                    rows.append((runtime, "serve.py", clients, throughput, p50, p99, per_batch))
                    print(rows[-1], flush=True)
                    labels = {**(labels or {}), **got}
                if runtime == "PyTorch":
                    torch_labels = labels
                else:
                    agree = all(torch_labels.get(r, l) == l for r, l in labels.items())
        finally:
            server.terminate()
            server.wait(timeout=60)
    load_after = os.getloadavg()
    body = [
        f"`serve.py --threads 1` on 127.0.0.1 serving bench_predict's ELECTRA-Small-shaped NSMC classifier "
        "(`mecab_wordpiece` vocab, random weights) through PyTorch and through its ONNX file at once; each "
        f"client is a thread sending one real NSMC test review per request (httpx), {args.requests} requests "
        "per row. Concurrent requests are predicted together (default `--max_wait_ms 5`). The in-process rows are "
        "`Predictor.predict` without HTTP on the same thread: throughput in batches of 32 and latency of one "
        "review per call — the ceiling the server approaches as clients grow. PyTorch and onnxruntime gave the "
        f"same label for every review: {'yes' if agree else 'NO'}.",
        "",
        f"Load average (1 / 5 / 15 min) {' / '.join(f'{x:.1f}' for x in load_before)} at the start and "
        f"{' / '.join(f'{x:.1f}' for x in load_after)} at the end, on {os.cpu_count()} cores shared with other jobs "
        "(the clients run on the same 2 cores as the server).",
        "",
        "| runtime | path | concurrent clients | requests/s | p50 latency (ms) | p99 latency (ms) "
        "| requests per batch (mean) |",
        "|---|---|---|---|---|---|---|",
    ]
    for runtime, path, clients, throughput, p50, p99, per_batch in rows:
        body.append(f"| {runtime} | {path} | {clients if path == 'serve.py' else '—'} | {throughput:.1f} | "
                    f"{p50:.1f} | {p99:.1f} | {'—' if per_batch is None else f'{per_batch:.1f}'} |")
    if args.write:
        from bench.report import write_section

        write_section("serve", "serve.py under load: PyTorch vs ONNX vs the in-process API",
                      f"python -m bench.bench_serve --requests {args.requests} --clients {args.clients}",
                      "\n".join(body))
    else:
        print("\n".join(body))


if __name__ == "__main__":
    main()
