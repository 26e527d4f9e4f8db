"""A torch run killed with SIGKILL and rerun ends where an uninterrupted run ends: the same
weights, Adam slots, schedule and data position (pretrain/torch_backend/checkpoint.py)."""
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from pretrain import layout

from .conftest import ROOT, TINY_CONFIG

STEPS, SAVE_EVERY, KILL_AFTER = 40, 10, 14  # the log shows every 2nd step


def command(data_dir, model_dir):
    # Dropout on, a shuffle buffer, several passes over the sample's examples: every random state matters.
    hparams = dict(num_train_steps=STEPS, save_checkpoints_steps=SAVE_EVERY, keep_checkpoint_max=0, seed=7,
                   num_warmup_steps=5)
    return [sys.executable, os.path.join(ROOT, "run_pretraining.py"), "--backend", "torch", "--data_dir", data_dir,
            "--model_name", model_dir, "--hparams", TINY_CONFIG, "--hparams", json.dumps(hparams)]


def environment():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def run(data_dir, model_dir):
    done = subprocess.run(command(data_dir, model_dir), env=environment(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def run_and_kill(data_dir, model_dir):
    """Start the run and SIGKILL it once its log shows step KILL_AFTER: past a checkpoint, before the next."""
    process = subprocess.Popen(command(data_dir, model_dir), env=environment(), stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    for line in process.stdout:
        if line.startswith(f"train step {KILL_AFTER}/"):
            process.send_signal(signal.SIGKILL)
            break
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"


def assert_same(a, b, where=""):
    if torch.is_tensor(a):
        assert a.shape == b.shape and a.dtype == b.dtype, where
        if a.is_floating_point():
            assert torch.allclose(a, b, rtol=0, atol=1e-6), f"{where}: max diff {(a - b).abs().max().item()}"
        else:
            assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.mark.slow  # three pretraining processes: about a minute on a busy 2-core machine
def test_a_run_killed_and_resumed_equals_an_uninterrupted_one(tmp_path, sample_data):
    straight, killed = str(tmp_path / "straight"), str(tmp_path / "killed")
    run(sample_data, straight)
    run_and_kill(sample_data, killed)
    saved = [step for step, _ in layout.torch_checkpoints(killed)]
    assert saved and max(saved) < STEPS  # killed between checkpoints, before the end
    log = run(sample_data, killed)
    assert f"resuming from {layout.torch_checkpoint_path(killed, max(saved))} at step {max(saved)} of {STEPS}" in log

    end = [torch.load(layout.torch_checkpoint_path(d, STEPS), weights_only=True) for d in (straight, killed)]
    for key in ("model", "optimizer", "scheduler", "ranks", "step", "seed"):
        assert_same(end[0][key], end[1][key], key)
    # Bit for bit on this CPU: the same ops in the same order on the same values.
    assert all(torch.equal(end[0]["model"][k], end[1]["model"][k]) for k in end[0]["model"])
