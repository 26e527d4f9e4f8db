"""The stages meeting each other through the Makefile chain, as `make demo` runs them."""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUMMARY_ROWS = ["vocab", "pretraining examples", "pretraining loss", "discriminator (eval)",
                "conversion parity (max rel. error)", "fine-tune nsmc_sample", "time per stage"]


def make(*targets, work, env_extra=None, **variables):
    args = ["make", "--no-print-directory", *targets, f"WORK={work}", f"PY={sys.executable}"]
    args += [f"{k}={v}" for k, v in variables.items()]
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env)


def summary_rows(work):
    lines = open(os.path.join(work, "summary.md"), encoding="utf-8").read().splitlines()[2:]
    return [line.split(" | ")[0].lstrip("| ") for line in lines]


def test_broken_corpus_files_are_named_and_the_good_ones_built(tmp_path):
    corpus = tmp_path / "raw"
    corpus.mkdir()
    good = "\n".join(f"좋은 문장 {i}번은 잘 읽힙니다. 다음 문장도 있습니다." for i in range(40))
    (corpus / "good.txt").write_text(good + "\n\n" + good.replace("좋은", "새로운") + "\n", encoding="utf-8")
    (corpus / "invalid_utf8.txt").write_bytes("앞부분\n".encode() + b"\xff\xfe\xfd\n")
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "binary.dat").write_bytes(bytes(range(256)) * 4)
    work = tmp_path / "work"
    result = make("dataset", work=str(work), CORPUS_DIR=str(corpus), VOCAB_SIZE=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("invalid_utf8.txt:2: not UTF-8", "empty.txt: empty file", "binary.dat: binary file"):
        assert name in result.stderr
    assert os.path.exists(work / "vocab" / "vocab.txt")
    import json

    stats = json.load(open(work / "tfrecords" / "stats.json"))
    assert stats["examples"] > 0 and stats["documents"] == 3  # good.txt's two documents + the one good line


@pytest.mark.slow
def test_killed_during_pretraining_resumes_and_finishes(tmp_path):
    work = str(tmp_path / "work")
    steps = 200
    args = ["make", "--no-print-directory", "demo", f"WORK={work}", f"PY={sys.executable}", f"PRETRAIN_STEPS={steps}"]
    first = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    model_dir = os.path.join(work, "model")
    deadline = time.time() + 600
    try:
        # Kill the whole chain once pretraining has written its first checkpoint.
        while not glob.glob(os.path.join(model_dir, "model.ckpt-*.index")):
            assert first.poll() is None, "the chain ended before pretraining checkpointed"
            assert time.time() < deadline, "no checkpoint within the time limit"
            time.sleep(0.5)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert not os.path.exists(os.path.join(model_dir, "results", "unsup_results.txt"))
    killed_at = max(int(p.split("-")[-1].split(".")[0]) for p in glob.glob(os.path.join(model_dir, "model.ckpt-*.index")))
    assert killed_at < steps

    second = make("demo", work=work, PRETRAIN_STEPS=steps)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "preprocess.py" not in second.stdout  # finished stages were not redone
    # Resumed, not restarted: the rerun's step log starts after the checkpoint it was killed at.
    import re

    logged = [int(n) for n in re.findall(r"train step (\d+)/", second.stdout)]
    assert logged and logged[0] > killed_at, (killed_at, logged[:3])
    final = max(int(p.split("-")[-1].split(".")[0]) for p in glob.glob(os.path.join(model_dir, "model.ckpt-*.index")))
    assert final == steps
    assert summary_rows(work) == SUMMARY_ROWS
    shutil.rmtree(work, ignore_errors=True)


def read_unsup_results(work):
    path = os.path.join(work, "model", "results", "unsup_results.txt")
    return {k: float(v) for k, v in (line.strip().split(" = ") for line in open(path) if " = " in line)}


def test_demo_pretraining_learns_to_detect_replacements(tmp_path):
    """The demo's pretraining on the bundled Korean sample must leave a discriminator that finds
    replaced tokens. A collapsed one (seen with lr 2e-3 in the tiny config) answers 'original'
    everywhere: accuracy stays high because most tokens are original, recall drops to 0."""
    work = str(tmp_path / "work")
    result = make("pretrain", work=work)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_unsup_results(work)
    assert metrics["disc_recall"] > 0.05, metrics
    assert metrics["disc_auc_real_tokens"] > 0.7 and metrics["disc_prob_std_real_tokens"] > 0.02, metrics
    assert metrics["disc_auc"] > 0.75, metrics


@pytest.mark.slow
def test_make_continued_demo_extends_warm_starts_and_fine_tunes(tmp_path):
    """The released-model path through make: a stand-in model, then the chain continues it."""
    config = yaml.safe_load(open(os.path.join(ROOT, "conf", "nsmc", "sample.yaml"), encoding="utf-8"))
    config.update(num_train_epochs=1, data_dir=os.path.join(ROOT, "data", "finetune_sample"))
    finetune_config = tmp_path / "sample_one_epoch.yaml"
    finetune_config.write_text(yaml.safe_dump(config), encoding="utf-8")
    work = tmp_path / "work"
    result = subprocess.run(["make", "--no-print-directory", "continued-demo", "-o", ".venv/.installed",
                             f"PY={sys.executable}", f"WORK={work}", "PRETRAIN_STEPS=100", "CONTINUED_STEPS=20",
                             f"FINETUNE_CONFIG={finetune_config}"],
                            cwd=ROOT, capture_output=True, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1", TF_NUM_INTRAOP_THREADS="1"))
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]

    released = work / "released" / "pytorch" / "discriminator"
    assert sum(1 for _ in open(released / "vocab.txt", encoding="utf-8")) == 1000  # RELEASED_VOCAB_SIZE
    continued = work / "continued"
    extension = json.loads((continued / "vocab" / "vocab_extension.json").read_text(encoding="utf-8"))
    assert extension["num_new"] == 20 and extension["base_vocab_size"] == 1000
    warm = json.loads((continued / "model" / "warm_start.json").read_text(encoding="utf-8"))
    assert warm["saved_model"] == str(released) and warm["fresh"] == {} and warm["vocab_extension"]
    assert (continued / "model" / "model.ckpt-20.index").is_file()
    assert (continued / "pytorch" / "discriminator" / "model.safetensors").is_file()
    results = json.loads((continued / "finetune" / "nsmc_sample" / "results.json").read_text(encoding="utf-8"))
    assert any(e.get("final") for e in results["evaluations"])
    summary = (continued / "summary.md").read_text(encoding="utf-8")
    assert "extended: 20 new tokens" in summary and f"| continued from | {released}:" in summary
