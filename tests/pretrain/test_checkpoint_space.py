"""A checkpoint save that fails on a full disk leaves the previous checkpoint to resume from.

Needs a real full filesystem (a tmpfs, mounted by root); skipped elsewhere.
"""
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from pretrain.checkpoint_space import clear_failed_save
from pretrain.tf_backend.hooks import FreeSpaceListener
from util.errors import UserInputError


@pytest.fixture
def small_disk(mount_tmpfs):
    return str(mount_tmpfs("3m"))


def fill(directory, leave):
    free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
    with open(os.path.join(directory, "filler"), "wb") as f:
        f.write(b"\0" * max(0, free - leave))


def test_a_failed_save_keeps_the_previous_checkpoint_usable(small_disk):
    model_dir = small_disk
    with tf.Graph().as_default():
        step = tf.train.get_or_create_global_step()
        weights = tf.get_variable("w", [250, 1000], initializer=tf.ones_initializer())  # 1 MB
        saver = tf.train.Saver()
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            session.run(step.assign(1))
            saver.save(session, os.path.join(model_dir, "model.ckpt"), global_step=1)
            fill(model_dir, 300 * 1024)
            session.run([weights.assign(weights * 2), step.assign(2)])
            with pytest.raises(Exception) as caught:  # TensorFlow's own error, as a training run meets it
                saver.save(session, os.path.join(model_dir, "model.ckpt"), global_step=2)
    assert "No space left on device" in str(caught.value)
    with tf.Graph().as_default() as big:  # the Estimator writes graph.pbtxt through a temporary too
        tf.constant(np.zeros(200_000, np.float32))
        with pytest.raises(Exception):
            tf.io.write_graph(big.as_graph_def(), model_dir, "graph.pbtxt")
    note = clear_failed_save(model_dir)
    assert note == "model.ckpt-1 (step 1) is intact and a rerun resumes from it"
    left = sorted(n for n in os.listdir(model_dir) if n not in ("filler", "checkpoint"))
    assert left == ["model.ckpt-1.data-00000-of-00001", "model.ckpt-1.index", "model.ckpt-1.meta"]
    assert tf.train.latest_checkpoint(model_dir).endswith("model.ckpt-1")
    assert np.all(tf.train.load_variable(model_dir, "w") == 1.0)


def test_a_save_the_disk_cannot_hold_is_refused_before_it_starts(small_disk):
    fill(small_disk, 512 * 1024)
    with tf.Graph().as_default():
        tf.train.get_or_create_global_step()
        tf.get_variable("w", [250, 1000])  # 1 MB, more than is left
        listener = FreeSpaceListener(small_disk)
        listener.begin()
        with pytest.raises(UserInputError, match=r"model dir \(checkpoint at step 7\) .*: the disk is full "
                                                 r"\(.* KB left, about 2.0 MB needed\); no checkpoint was saved"):
            listener.before_save(None, 7)
    assert sorted(os.listdir(small_disk)) == ["filler"]
