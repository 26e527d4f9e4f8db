"""predict.py as a user runs it: standard input/output or files, JSON lines in order, exit status."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "finetune"))

from finetune_helpers import SAMPLE_DIR, make_tiny_electra, tiny_run_config  # noqa: E402

ENV = dict(os.environ, USE_TF="0", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")


def predict(*args, stdin=b""):
    return subprocess.run([sys.executable, os.path.join(ROOT, "predict.py"), *args], input=stdin,
                          capture_output=True, cwd=ROOT, env=ENV, timeout=300)


@pytest.fixture(scope="module")
def best_model(tmp_path_factory):
    import torch
    import yaml

    from finetune.config import load_config
    from finetune.tasks import task_config_defaults
    from finetune.trainer import run

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("predict")
    settings = tiny_run_config(make_tiny_electra(str(tmp / "tiny")), tmp / "ckpt", max_steps=4)
    (tmp / "run.yaml").write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    run(load_config(str(tmp / "run.yaml"), extra_defaults=task_config_defaults()))
    return tmp / "ckpt" / "nsmc_tiny" / "best_model"


@pytest.mark.slow  # two interpreter start-ups with torch and transformers: 20-50 s on a shared 2-core machine
def test_stdin_to_stdout_and_files_with_a_bad_line(best_model, tmp_path):
    with open(os.path.join(SAMPLE_DIR, "sample_reviews_test.txt"), encoding="utf-8") as f:
        reviews = [line.split("\t")[1] for line in f.read().splitlines()[1:6]]
    done = predict("--model_dir", str(best_model), "--threads", "1", stdin="\n".join(reviews).encode() + b"\n")
    assert done.returncode == 0, done.stderr.decode()
    records = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3, 4, 5] and [r["text"] for r in records] == reviews
    assert all(r["label"] in ("negative", "positive") for r in records)

    source = tmp_path / "reviews.txt"
    source.write_bytes(("\n".join(reviews[:2]) + "\n\n" + reviews[2] + "\n").encode())
    out = tmp_path / "out.jsonl"
    done = predict("--model_dir", str(best_model), "--input", str(source), "--output", str(out))
    assert done.returncode == 1
    assert f"{source}:3: error: empty line" in done.stderr.decode()
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r.get("label") for r in written] == [records[0]["label"], records[1]["label"], None, records[2]["label"]]
    assert written[2] == {"line": 3, "error": "empty line"}


def test_not_a_fine_tuned_directory_is_one_line(tmp_path):
    tiny = make_tiny_electra(str(tmp_path / "tiny"))
    done = predict("--model_dir", tiny, stdin="좋아요\n".encode())
    assert done.returncode == 1 and done.stdout == b""
    lines = done.stderr.decode().strip().splitlines()
    assert lines == [f"error: {tiny}: ElectraForPreTraining is not a fine-tuned model (no task head); "
                     "fine-tune it with run_finetune.py and pass its best_model/ directory"]


def test_model_weights_cut_short_are_one_line(best_model, tmp_path):
    import shutil

    damaged = tmp_path / "best_model"
    shutil.copytree(best_model, damaged)
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # an interrupted copy
    done = predict("--model_dir", str(damaged), stdin="좋아요\n".encode())
    assert done.returncode == 1 and done.stdout == b""
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {damaged}: cannot load the model ("), lines
