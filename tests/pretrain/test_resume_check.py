"""pretrain/resume_check.py without a training run: the TF state file pointed past a damaged
newest checkpoint so that TensorFlow itself resumes from the intact one, and the torch
backend's newest loadable step-N.pt (the runs themselves: test_damaged_checkpoints.py, slow)."""
import os

import pytest
import tensorflow as tf
import torch

from pretrain import layout, resume_check
from util.errors import UserInputError

from .test_checkpoint_state import data_file, model_dir  # noqa: F401 (a fixture)


def test_tf_resume_points_tensorflow_at_the_newest_intact_checkpoint(model_dir):  # noqa: F811
    assert resume_check.tf_resume(model_dir, printer=pytest.fail).step == 20  # intact: nothing said or written
    full = os.path.getsize(data_file(model_dir, 20))
    os.truncate(data_file(model_dir, 20), 100)
    lines = []
    choice = resume_check.tf_resume(model_dir, printer=lines.append)
    assert choice.step == 10 and lines == [
        f"note: {data_file(model_dir, 20)} is damaged (cut short: 100 bytes, the index lists {full:,}); "
        "using model.ckpt-10, the newest intact checkpoint"]
    assert tf.train.latest_checkpoint(model_dir) == os.path.join(model_dir, "model.ckpt-10")
    assert layout.latest_checkpoint(model_dir) == ("tf", os.path.join(model_dir, "model.ckpt-10"), 10)


def test_tf_resume_with_nothing_intact_names_the_fix(model_dir):  # noqa: F811
    for step in (10, 20):
        os.truncate(data_file(model_dir, step), 100)
    with pytest.raises(UserInputError, match=r"and no intact one in .*; copy the checkpoint files again, or "
                                             r"remove them to start from step 0$"):
        resume_check.tf_resume(model_dir)


def save_torch(model_dir, step):
    path = layout.torch_checkpoint_path(model_dir, step)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save({"format": 1, "step": step, "model": {"w": torch.ones(64, 64) * step}}, path)
    return path


def test_torch_resume_loads_the_newest_that_loads(tmp_path):
    model_dir = str(tmp_path)
    assert resume_check.torch_resume(model_dir) is None
    older, newest = save_torch(model_dir, 10), save_torch(model_dir, 20)
    os.truncate(newest, os.path.getsize(newest) // 2)
    lines = []
    state, path, step = resume_check.torch_resume(model_dir, printer=lines.append)
    assert (path, step, state["step"]) == (older, 10, 10)
    assert len(lines) == 1 and lines[0].startswith(f"note: {newest} is damaged (")
    assert lines[0].endswith("; using step-10.pt, the newest intact checkpoint")
    with open(older, "wb") as f:
        f.write(b"\x80\x02garbage" * 10)
    with pytest.raises(UserInputError, match=rf"^{newest}: damaged torch checkpoint \(.*\), and no intact one"):
        resume_check.torch_resume(model_dir)
