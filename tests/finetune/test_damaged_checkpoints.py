"""A damaged checkpoint-N/ (a garbage or cut-short optimizer.pt, a cut-short trainer_state.json or
model.safetensors) is never resumed: the run falls back to the newest intact checkpoint with a
note, or stops with one line naming the damaged file when no intact one is left."""
import json
import logging
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from finetune.config import load_config
from finetune.trainer import run
from util.errors import UserInputError

from finetune_helpers import ROOT, tiny_run_config


def write_config(settings, path):
    path.write_text(yaml.safe_dump(settings, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return str(path)


def run_settings(tiny_model_dir, ckpt_dir, **values):
    # save_optimizer keeps every checkpoint resumable, so an older one can stand in for the newest.
    return tiny_run_config(tiny_model_dir, ckpt_dir, max_steps=30, save_steps=10, logging_steps=10,
                           save_total_limit=0, num_threads=1, **values)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_model_dir):
    """A run of 30 steps with a resumable checkpoint every 10, and its results."""
    base = tmp_path_factory.mktemp("finished")
    results = run(load_config(write_config(run_settings(tiny_model_dir, base / "ckpt", save_optimizer=True),
                                           base / "run.yaml")))
    return base / "ckpt", results


def damage(path, how):
    data = path.read_bytes()
    if how == "garbage":
        path.write_bytes(os.urandom(len(data)))
    else:  # cut short, as by an interrupted copy
        path.write_bytes(data[: len(data) // 2])


def evaluations(results):
    return [(e["step"], e["split"], e["metrics"]) for e in results["evaluations"]]


@pytest.mark.parametrize("name,how", [("optimizer.pt", "garbage"), ("optimizer.pt", "truncated"),
                                      ("trainer_state.json", "truncated"), ("model.safetensors", "truncated"),
                                      ("scheduler.pt", "truncated"), ("rng_state.pt", "garbage")])
def test_damaged_newest_checkpoint_falls_back_to_the_previous_with_a_note(
        tmp_path, tiny_model_dir, finished, caplog, name, how):
    finished_ckpt, finished_results = finished
    ckpt = tmp_path / "ckpt"
    shutil.copytree(finished_ckpt, ckpt)
    out = ckpt / "nsmc_tiny"
    damage(out / "checkpoint-30" / name, how)

    with caplog.at_level(logging.WARNING):
        results = run(load_config(write_config(run_settings(tiny_model_dir, ckpt, save_optimizer=True),
                                               tmp_path / "run.yaml")))

    notes = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert len(notes) == 1, notes
    assert os.path.join("checkpoint-30", name) in notes[0] and "checkpoint-20" in notes[0]
    assert results["resumed_from"] == 20
    # The 10 steps trained again give what the uninterrupted run gave, and a whole checkpoint-30.
    assert evaluations(results) == evaluations(finished_results)
    assert json.loads((out / "checkpoint-30" / "trainer_state.json").read_text(encoding="utf-8"))["step"] == 30


@pytest.mark.parametrize("name,how", [("optimizer.pt", "garbage"), ("trainer_state.json", "truncated"),
                                      ("model.safetensors", "truncated")])
def test_no_intact_checkpoint_left_is_one_line_naming_the_file(tmp_path, tiny_model_dir, finished, name, how):
    finished_ckpt, _ = finished
    ckpt = tmp_path / "ckpt"
    shutil.copytree(finished_ckpt, ckpt)
    for step in (10, 20, 30):
        damage(ckpt / "nsmc_tiny" / f"checkpoint-{step}" / name, how)
    with pytest.raises(UserInputError) as e:
        run(load_config(write_config(run_settings(tiny_model_dir, ckpt, save_optimizer=True), tmp_path / "run.yaml")))
    message = str(e.value)
    assert "\n" not in message
    assert os.path.join("checkpoint-30", name) in message and "resume: false" in message


@pytest.mark.slow
def test_damaged_checkpoint_without_older_resumable_one_exits_1_in_one_line(tmp_path, tiny_model_dir):
    # Without save_optimizer only the newest checkpoint keeps optimizer.pt: nothing to fall back to.
    path = write_config(run_settings(tiny_model_dir, tmp_path / "ckpt"), tmp_path / "run.yaml")
    command = [sys.executable, os.path.join(ROOT, "run_finetune.py"), "--config_file", path]
    env = dict(os.environ, OMP_NUM_THREADS="1", USE_TF="0")
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    damage(tmp_path / "ckpt" / "nsmc_tiny" / "checkpoint-30" / "optimizer.pt", "garbage")
    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert again.returncode == 1, again.stderr
    assert "Traceback" not in again.stderr
    errors = [line for line in again.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and os.path.join("checkpoint-30", "optimizer.pt") in errors[0], again.stderr
    assert "resume: false" in errors[0]
