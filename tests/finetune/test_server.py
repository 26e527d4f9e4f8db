"""serve.py answers a real HTTP client on loopback: endpoints per model, checks, batching, readiness.

The server runs as a user starts it (a subprocess on 127.0.0.1, a free port) with the NSMC
model twice, through PyTorch and through its ONNX file, and the Question Pair model; httpx
sends real reviews, alone and from many threads at once.
"""
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import time
import unicodedata

import pytest

from convert.onnx_export import export_finetuned
from finetune.inference import Predictor

from finetune_helpers import ROOT
from serving_models import nsmc_reviews

httpx = pytest.importorskip("httpx")
ENV = dict(os.environ, USE_TF="0", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, status, process, seconds=300):
    """Poll ``url`` until it answers ``status``; fail if the server exits first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server exited with {process.returncode}"
        try:
            response = httpx.get(url, timeout=5)
            if response.status_code == status:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer {status} within {seconds} s")


@pytest.fixture(scope="module")
def server(nsmc_model, pair_model, tmp_path_factory):
    onnx_path, _ = export_finetuned(nsmc_model, str(tmp_path_factory.mktemp("onnx") / "nsmc.onnx"),
                                    log=lambda _: None)
    port = free_port()
    log = tmp_path_factory.mktemp("log") / "server.txt"
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "serve.py"), "--port", str(port), "--threads", "1",
                                "--model", f"nsmc={nsmc_model}", "--model", f"nsmc-onnx={nsmc_model}",
                                "--onnx", f"nsmc-onnx={onnx_path}", "--model", f"pair={pair_model}",
                                "--max_wait_ms", "50"], stdout=subprocess.DEVNULL, stderr=open(log, "wb"),
                               cwd=ROOT, env=ENV)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base + "/health", 200, process)
        yield base, process
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_health_then_readiness_then_predictions_equal_the_api(server, nsmc_model):
    base, _ = server
    assert wait_for(base + "/ready", 200, server[1]).json() == {"ready": True, "models": ["nsmc", "nsmc-onnx", "pair"]}
    reviews = nsmc_reviews(8)
    inputs = reviews + ["", unicodedata.normalize("NFD", reviews[0]), "\u200b"]
    expected = Predictor(nsmc_model, threads=1).predict(reviews)
    for name in ("nsmc", "nsmc-onnx"):
        response = httpx.post(f"{base}/models/{name}/predict", json={"inputs": inputs}, timeout=120)
        assert response.status_code == 200
        records = response.json()["predictions"]
        assert [r.get("label") for r in records[:8]] == [e["label"] for e in expected]
        for record, want in zip(records, expected):
            assert record["probabilities"] == pytest.approx(want["probabilities"], abs=1e-4)
        assert records[8] == {"error": "text is empty"} and records[10] == {"error": "text is empty"}
        assert records[9]["text"] == reviews[0] and records[9]["label"] == expected[0]["label"]
    models = {m["name"]: m for m in httpx.get(base + "/models").json()["models"]}
    assert models["nsmc-onnx"]["runtime"] == "onnxruntime" and models["nsmc"]["labels"] == ["negative", "positive"]


def test_requests_the_model_cannot_read_are_refused_in_one_line(server):
    base, _ = server
    wait_for(base + "/ready", 200, server[1])
    response = httpx.post(base + "/models/pair/predict", json={"inputs": [["환불 어떻게 하나요?", "환불 방법 알려주세요"],
                                                                          "환불 어떻게 하나요?"]}, timeout=60)
    records = response.json()["predictions"]
    assert records[0]["label"] in ("0", "1") and records[0]["text_a"] == "환불 어떻게 하나요?"
    assert records[1] == {"error": "this model reads a pair (text_a, text_b); the second text is missing"}
    missing = httpx.post(base + "/models/nope/predict", json={"inputs": ["x"]})
    assert missing.status_code == 404 and missing.json() == {"error": "no model 'nope' here (models: nsmc, nsmc-onnx, pair)"}
    for body in ({"texts": ["x"]}, ["x"]):
        bad = httpx.post(base + "/models/nsmc/predict", json=body)
        assert bad.status_code == 422 and bad.json() == {"error": 'expected a JSON object {"inputs": [item, ...]}'}
    not_json = httpx.post(base + "/models/nsmc/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert not_json.status_code == 422 and not_json.json()["error"].startswith("the request body is not JSON")


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(server, nsmc_model):
    base, _ = server
    wait_for(base + "/ready", 200, server[1])
    reviews = nsmc_reviews(48, start=100)
    expected = [p["label"] for p in Predictor(nsmc_model, threads=1).predict(reviews)]
    with httpx.Client(timeout=120) as client, concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda r: client.post(f"{base}/models/nsmc-onnx/predict", json={"inputs": [r]}),
                                reviews))
    assert [a.json()["predictions"][0]["text"] for a in answers] == reviews
    assert [a.json()["predictions"][0]["label"] for a in answers] == expected
    batching = {m["name"]: m for m in httpx.get(base + "/models").json()["models"]}["nsmc-onnx"]["batching"]
    assert batching["largest_batch_requests"] > 1 and batching["batches"] < batching["requests"]


def test_a_model_that_cannot_load_ends_the_server_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, os.path.join(ROOT, "serve.py"), "--port", str(free_port()),
                           "--model", f"broken={tmp_path}"], capture_output=True, cwd=ROOT, env=ENV, timeout=300)
    assert done.returncode == 1
    lines = [line for line in done.stderr.decode().splitlines() if line.strip()]
    assert lines == [f"error: {tmp_path}: no config.json, so not a fine-tuned model directory "
                     "(expected ckpt_dir/<task>/best_model from run_finetune.py)"], lines
