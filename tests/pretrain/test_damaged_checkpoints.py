"""A resumed pretraining run past a damaged checkpoint (pretrain/resume_check.py): one line names
the damaged file, then the run resumes from the newest intact checkpoint with a note saying so,
or, with none intact, stops with one line naming the fix. Both backends, real tiny runs."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf

from .conftest import ROOT, TINY_CONFIG

pytestmark = pytest.mark.slow
SAVE_EVERY, FIRST_STEPS, RESUMED_STEPS = 10, 20, 30


def command(data_dir, model_dir, backend, steps):
    hparams = dict(num_train_steps=steps, save_checkpoints_steps=SAVE_EVERY, iterations_per_loop=5,
                   keep_checkpoint_max=0)
    return [sys.executable, os.path.join(ROOT, "run_pretraining.py"), "--backend", backend, "--data_dir", data_dir,
            "--model_name", model_dir, "--hparams", TINY_CONFIG, "--hparams", json.dumps(hparams)]


def run(data_dir, model_dir, backend, steps):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.run(command(data_dir, model_dir, backend, steps), env=env, capture_output=True, text=True,
                          timeout=600)


def finished(factory, data_dir, backend):
    """A run of FIRST_STEPS steps, checkpoints every SAVE_EVERY; its model dir."""
    model_dir = str(factory.mktemp(f"finished_{backend}") / "model")
    done = run(data_dir, model_dir, backend, FIRST_STEPS)
    assert done.returncode == 0, done.stderr[-2000:]
    return model_dir


@pytest.fixture(scope="module")
def finished_tf(tmp_path_factory, tiny_data):
    return finished(tmp_path_factory, tiny_data, "tf")


@pytest.fixture(scope="module")
def finished_torch(tmp_path_factory, tiny_data):
    return finished(tmp_path_factory, tiny_data, "torch")


@pytest.fixture
def tf_copy(finished_tf, tmp_path):
    return shutil.copytree(finished_tf, str(tmp_path / "model"))


@pytest.fixture
def torch_copy(finished_torch, tmp_path):
    return shutil.copytree(finished_torch, str(tmp_path / "model"))


def tf_data(model_dir, step):
    return os.path.join(model_dir, f"model.ckpt-{step}.data-00000-of-00001")


def torch_file(model_dir, step):
    return os.path.join(model_dir, "torch_checkpoints", f"step-{step}.pt")


def truncate(path):
    os.truncate(path, os.path.getsize(path) // 2)


def write(path, content):
    with open(path, "wb") as f:
        f.write(content)


def damage(case, model_dir):
    """Damage the copy as the fault sweep did; returns the damaged file and the step to resume from."""
    if case == "data_truncated":
        truncate(tf_data(model_dir, 20))
        return tf_data(model_dir, 20), 10
    if case == "index_deleted":
        path = os.path.join(model_dir, "model.ckpt-20.index")
        os.remove(path)
        return path, 10
    path = os.path.join(model_dir, "checkpoint")
    write(path, b"" if case == "state_empty" else bytes(range(256)) * 4)
    return path, 20


def check_clean(done):
    assert "Traceback" not in done.stderr, done.stderr[-3000:]


def trained_steps(done):
    return [int(line.split()[2].split("/")[0]) for line in done.stdout.splitlines() if line.startswith("train step")]


@pytest.mark.parametrize("case", ["data_truncated", "index_deleted", "state_empty", "state_binary"])
def test_a_damaged_tf_checkpoint_is_named_and_the_newest_intact_resumed(tf_copy, tiny_data, case):
    model_dir = tf_copy
    path, step = damage(case, model_dir)
    done = run(tiny_data, model_dir, "tf", RESUMED_STEPS)
    check_clean(done)
    assert done.returncode == 0, done.stderr[-2000:]
    notes = [line for line in done.stdout.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and notes[0].startswith(f"note: {path} is damaged (")
    assert notes[0].endswith(f"; using model.ckpt-{step}, the newest intact checkpoint")
    assert f"resuming from {os.path.join(model_dir, f'model.ckpt-{step}')} at step {step} of 30" in done.stdout
    assert step < min(trained_steps(done)) <= step + 2 and max(trained_steps(done)) == RESUMED_STEPS
    assert tf.train.load_variable(model_dir, "global_step") == RESUMED_STEPS


def test_no_intact_tf_checkpoint_stops_with_the_fix(tf_copy, tiny_data):
    model_dir = tf_copy
    full = os.path.getsize(tf_data(model_dir, 20))
    for step in (0, 10, 20):
        truncate(tf_data(model_dir, step))
    done = run(tiny_data, model_dir, "tf", RESUMED_STEPS)
    check_clean(done)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: {tf_data(model_dir, 20)}: damaged checkpoint (cut short: "
        f"{os.path.getsize(tf_data(model_dir, 20)):,} bytes, the index lists "
        f"{full:,}), and no intact one in {model_dir}; copy the checkpoint "
        "files again, or remove them to start from step 0")
    assert not trained_steps(done)


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_a_damaged_torch_checkpoint_is_named_and_the_one_before_resumed(torch_copy, tiny_data, how):
    model_dir = torch_copy
    path = torch_file(model_dir, 20)
    truncate(path) if how == "truncated" else write(path, bytes(range(256)) * 64)
    done = run(tiny_data, model_dir, "torch", RESUMED_STEPS)
    check_clean(done)
    assert done.returncode == 0, done.stderr[-2000:]
    notes = [line for line in done.stdout.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and notes[0].startswith(f"note: {path} is damaged (")
    assert notes[0].endswith("; using step-10.pt, the newest intact checkpoint")
    assert f"resuming from {torch_file(model_dir, 10)} at step 10 of 30" in done.stdout
    assert 10 < min(trained_steps(done)) <= 12 and max(trained_steps(done)) == RESUMED_STEPS


def test_no_intact_torch_checkpoint_stops_with_the_fix(torch_copy, tiny_data):
    model_dir = torch_copy
    for step in (10, 20):
        truncate(torch_file(model_dir, step))
    done = run(tiny_data, model_dir, "torch", RESUMED_STEPS)
    check_clean(done)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {torch_file(model_dir, 20)}: damaged torch checkpoint (")
    assert last.endswith(f"and no intact one in {os.path.dirname(torch_file(model_dir, 20))}; copy the checkpoint "
                         "files again, or remove them to start from step 0")
    assert not trained_steps(done)


def test_a_torch_run_beside_a_damaged_tf_state_file_names_it(torch_copy, tiny_data):
    """A torch model dir holding TF checkpoints converted beside its own reads the TF state file too."""
    model_dir = torch_copy
    path = os.path.join(model_dir, "checkpoint")
    write(path, bytes(range(256)) * 4)
    done = run(tiny_data, model_dir, "torch", RESUMED_STEPS)
    check_clean(done)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: {path}: damaged checkpoint state file (binary, not the checkpoint state text TensorFlow writes), "
        f"and no TF checkpoint in {model_dir}; remove it")
