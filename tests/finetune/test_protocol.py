"""The published protocol: which number is reported, checkpoint-N/ every save_steps,
eval_all_checkpoints, the keep-limit, resuming a killed run, and random sampling by default."""
import _thread
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

from finetune import checkpoints, data
from finetune.config import load_config
from finetune.trainer import run
from util.errors import UserInputError

from finetune_helpers import ROOT, SAMPLE_DIR, tiny_run_config


def with_dev_file(tmp_path):
    """The sample set with a dev file (the last 60 training reviews) beside train and test."""
    with open(os.path.join(SAMPLE_DIR, "sample_reviews_train.txt"), encoding="utf-8") as f:
        lines = f.readlines()
    (tmp_path / "train.txt").write_text("".join(lines[:241]), encoding="utf-8")
    (tmp_path / "dev.txt").write_text(lines[0] + "".join(lines[241:]), encoding="utf-8")
    shutil.copy(os.path.join(SAMPLE_DIR, "sample_reviews_test.txt"), tmp_path / "test.txt")
    return {"data_dir": str(tmp_path), "train_file": "train.txt", "dev_file": "dev.txt", "test_file": "test.txt"}


def test_published_number_is_the_best_scheduled_test_score_beside_the_dev_selected_one(
        tmp_path, write_yaml, tiny_model_dir):
    config = load_config(write_yaml(tiny_run_config(
        tiny_model_dir, tmp_path / "ckpt", **with_dev_file(tmp_path), max_steps=12, logging_steps=5,
        save_steps=0, evaluate_test_during_training=True)))
    results = run(config)
    during = [e for e in results["evaluations"] if not e.get("final")]
    assert [(e["step"], e["split"], e.get("scheduled")) for e in during] == [
        (5, "dev", True), (5, "test", True), (10, "dev", True), (10, "test", True),
        (12, "dev", False), (12, "test", False)]
    # Dialog-KoELECTRA: with evaluate_test_during_training, best_score = max over the test
    # evaluations every logging_steps; the extra end-of-training evaluation is not one of them.
    published = results["published"]
    scheduled_test = {e["step"]: e["metrics"]["accuracy"] for e in during if e["split"] == "test" and e["scheduled"]}
    assert published["split"] == "test" and published["score"] == max(scheduled_test.values())
    assert published["step"] == max(scheduled_test, key=lambda s: (scheduled_test[s], -s))
    # Ours: best_model/ chosen on dev, and that model's test score reported beside it.
    best = results["best"]
    dev_scores = {e["step"]: e["metrics"]["accuracy"] for e in during if e["split"] == "dev"}
    assert best["split"] == "dev" and best["score"] == max(dev_scores.values())
    chosen = results["dev_selected"]
    final = {e["split"]: e["metrics"] for e in results["evaluations"] if e.get("final")}
    assert chosen == {"step": best["step"], "dev": final["dev"], "test": final["test"]}
    out = tmp_path / "ckpt" / "nsmc_tiny"
    assert json.loads((out / "results.json").read_text(encoding="utf-8"))["published"] == published
    # Both originals write <split>/<split>-<step>.txt at every evaluation.
    assert (out / "test" / "test-5.txt").read_text().startswith("  accuracy = ")


def test_checkpoints_every_save_steps_scored_on_test_with_a_keep_limit(tmp_path, write_yaml, tiny_model_dir, caplog):
    config = load_config(write_yaml(tiny_run_config(
        tiny_model_dir, tmp_path / "ckpt", max_steps=12, logging_steps=6, save_steps=4,
        eval_all_checkpoints=True, save_total_limit=1)))
    results = run(config)
    out = tmp_path / "ckpt" / "nsmc_tiny"
    record = results["checkpoints"]
    assert [e["step"] for e in record["evaluations"]] == [4, 8, 12]
    scores = {e["step"]: e["metrics"]["accuracy"] for e in record["evaluations"]}
    assert record["best"]["score"] == max(scores.values())
    # eval_results.txt in the originals' key_step = value form, one line per checkpoint and metric.
    lines = (out / "eval_results.txt").read_text().splitlines()
    assert lines == [f"accuracy_{s} = {scores[s]}" for s in (4, 8, 12)]
    # Keep-limit 1: the newest checkpoint, plus the best-on-test one (selection and published).
    kept = [s for s, _ in checkpoints.list_checkpoints(str(out))]
    assert 12 in kept and set(kept) <= {12, results["best"]["step"], record["best"]["step"]}
    assert not (out / "checkpoint-4").exists() or 4 in (results["best"]["step"], record["best"]["step"])
    # Only the newest keeps the optimizer state (save_optimizer: false); every one loads on its own.
    newest = out / "checkpoint-12"
    assert (newest / "optimizer.pt").is_file() and (newest / "scheduler.pt").is_file()
    for step in kept[:-1]:
        assert not (out / f"checkpoint-{step}" / "optimizer.pt").exists()

    # The originals' final loop re-loads checkpoints from disk: the same scores come back.
    again = run(load_config(write_yaml(tiny_run_config(
        tiny_model_dir, tmp_path / "ckpt", do_train=False, eval_all_checkpoints=True), name="eval.yaml")))
    assert {e["step"]: e["metrics"]["accuracy"] for e in again["checkpoints"]["evaluations"]} == {
        s: scores[s] for s in kept}

    # A model directory holding optimizer.pt/scheduler.pt continues them, as the originals do.
    caplog.set_level("INFO")
    run(load_config(write_yaml(tiny_run_config(
        str(newest), tmp_path / "from-checkpoint", max_steps=2, logging_steps=2, save_steps=0), name="cont.yaml")))
    assert "loaded optimizer and scheduler states from" in caplog.text


def test_save_optimizer_keeps_optimizer_state_in_every_checkpoint(tmp_path, write_yaml, tiny_model_dir):
    run(load_config(write_yaml(tiny_run_config(tiny_model_dir, tmp_path / "ckpt", max_steps=8, logging_steps=4,
                                               save_steps=4, save_optimizer=True, save_total_limit=0))))
    out = tmp_path / "ckpt" / "nsmc_tiny"
    for step in (4, 8):
        assert (out / f"checkpoint-{step}" / "optimizer.pt").is_file()
        assert (out / f"checkpoint-{step}" / "scheduler.pt").is_file()


def resume_settings(tiny_model_dir, ckpt):
    return tiny_run_config(tiny_model_dir, ckpt, num_train_epochs=3, logging_steps=10, save_steps=10,
                           num_threads=1, eval_all_checkpoints=True)


def comparable(results):
    return [(e["step"], e["split"], e["metrics"]) for e in results["evaluations"]]


def best_weights(out):
    from safetensors.torch import load_file

    return load_file(os.path.join(out, "best_model", "model.safetensors"))


def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, write_yaml, tiny_model_dir):
    whole = run(load_config(write_yaml(resume_settings(tiny_model_dir, tmp_path / "whole"), name="whole.yaml")))

    path = write_yaml(resume_settings(tiny_model_dir, tmp_path / "cut"), name="cut.yaml")
    out = tmp_path / "cut" / "nsmc_tiny"
    stop = threading.Event()

    def interrupt_after_first_checkpoint():
        while not stop.is_set():
            if (out / "checkpoint-20" / checkpoints.STATE).is_file():
                _thread.interrupt_main()  # KeyboardInterrupt in the training loop, like Ctrl-C
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=interrupt_after_first_checkpoint, daemon=True)
    watcher.start()
    # interrupt_main() does nothing where SIGINT is ignored, as in a job a shell started with `&`.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            run(load_config(path))
    finally:
        signal.signal(signal.SIGINT, previous)
        stop.set()
    assert not (out / "checkpoint-57").exists()

    resumed = run(load_config(path))
    assert resumed["resumed_from"] >= 20
    assert comparable(resumed) == comparable(whole)
    assert resumed["checkpoints"] == whole["checkpoints"]
    whole_best, resumed_best = best_weights(tmp_path / "whole" / "nsmc_tiny"), best_weights(out)
    assert all(torch.equal(whole_best[k], resumed_best[k]) for k in whole_best)


def test_resume_refuses_a_checkpoint_made_with_other_settings(tmp_path, write_yaml, tiny_model_dir):
    run(load_config(write_yaml(tiny_run_config(tiny_model_dir, tmp_path / "ckpt", max_steps=4, save_steps=4))))
    changed = write_yaml(tiny_run_config(tiny_model_dir, tmp_path / "ckpt", max_steps=4, save_steps=4,
                                         learning_rate=2e-3), name="changed.yaml")
    with pytest.raises(UserInputError) as e:
        run(load_config(changed))
    message = str(e.value)
    assert "\n" not in message and "learning_rate=0.001" in message and "resume: false" in message
    # resume: false starts over instead.
    again = run(load_config(changed, overrides={"resume": False}))
    assert "resumed_from" not in again and again["train"]["steps"] == 4


@pytest.mark.slow
def test_killed_process_resumes_from_its_last_checkpoint(tmp_path, write_yaml, tiny_model_dir):
    whole = run(load_config(write_yaml(resume_settings(tiny_model_dir, tmp_path / "whole"), name="whole.yaml")))
    path = write_yaml(resume_settings(tiny_model_dir, tmp_path / "cut"), name="cut.yaml")
    out = tmp_path / "cut" / "nsmc_tiny"
    command = [sys.executable, os.path.join(ROOT, "run_finetune.py"), "--config_file", path]
    env = dict(os.environ, OMP_NUM_THREADS="1", USE_TF="0")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (out / "checkpoint-20" / checkpoints.STATE).is_file() and time.time() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (out / "checkpoint-57").exists(), "the run finished before it was killed"
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    resumed = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert resumed["resumed_from"] >= 20
    assert comparable(resumed) == comparable(json.loads(json.dumps(whole)))
    assert not [p for p in os.listdir(out) if p.startswith(".")], "no half-written checkpoint left"


def test_published_yamls_sample_at_random_and_our_sample_groups_by_length():
    sample_files = {"train_file": os.path.join(SAMPLE_DIR, "sample_reviews_train.txt"),
                    "test_file": os.path.join(SAMPLE_DIR, "sample_reviews_test.txt")}
    shipped = load_config(os.path.join(ROOT, "conf", "nsmc", "electra-small.yaml"), overrides=sample_files)
    assert shipped.group_by_length is False
    assert load_config(os.path.join(ROOT, "conf", "nsmc", "sample.yaml")).group_by_length is True
    # Random sampling: each epoch one permutation of every example (RandomSampler's semantics),
    # batches cut from it in order; grouping would sort examples of similar length together.
    features = [{"input_ids": [1] * (3 + (i * 7) % 40), "attention_mask": [1] * (3 + (i * 7) % 40), "labels": 0}
                for i in range(64)]
    loader = data.train_loader(features, 8, 0, seed=42, epoch=0, group_by_length=shipped.group_by_length)
    generator = torch.Generator()
    generator.manual_seed(42 * 1000)
    order = torch.randperm(64, generator=generator).tolist()
    lengths = [len(features[i]["input_ids"]) for i in order]
    got = [batch["attention_mask"].sum(1).tolist() for batch in loader]
    assert [n for b in got for n in b] == lengths


def test_nni_receives_the_published_test_score_when_a_dev_file_exists(tmp_path, write_yaml, tiny_model_dir,
                                                                      monkeypatch):
    """With evaluate_test_during_training, Dialog-KoELECTRA reports the test score to NNI even
    though best_model/ is chosen on dev: intermediate results every logging_steps, final the best."""
    from finetune import trainer

    sent = {"intermediate": [], "final": []}

    class Recorder:
        def __init__(self, enabled):
            pass

        def intermediate(self, score):
            sent["intermediate"].append(score)

        def final(self, score):
            sent["final"].append(score)

    monkeypatch.setattr(trainer, "NniReporter", Recorder)
    results = run(load_config(write_yaml(tiny_run_config(
        tiny_model_dir, tmp_path / "ckpt", **with_dev_file(tmp_path), max_steps=10, logging_steps=5,
        save_steps=0, evaluate_test_during_training=True, do_nni=True))))
    test_scores = [e["metrics"]["accuracy"] for e in results["evaluations"] if e["split"] == "test"]
    assert sent["intermediate"] == test_scores and len(test_scores) == 2
    assert sent["final"] == [max(test_scores)] == [results["published"]["score"]]
