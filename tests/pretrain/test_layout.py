"""The model directory read without TensorFlow: the same newest checkpoint tf.train finds, and the
torch backend's checkpoints apart from TF's."""
import os
import shutil

import tensorflow.compat.v1 as tf

from pretrain import layout


def save_tf_checkpoints(model_dir, steps):
    with tf.Graph().as_default():
        step = tf.train.get_or_create_global_step()
        tf.get_variable("w", [2])
        saver = tf.train.Saver(max_to_keep=2)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            for s in steps:
                session.run(step.assign(s))
                saver.save(session, os.path.join(model_dir, "model.ckpt"), global_step=s)


def test_the_newest_tf_checkpoint_is_the_one_tf_train_finds(tmp_path):
    model_dir = str(tmp_path / "a")
    save_tf_checkpoints(model_dir, [1, 5, 12])
    assert layout.latest_tf_checkpoint(model_dir) == tf.train.latest_checkpoint(model_dir)
    assert layout.latest_checkpoint(model_dir) == ("tf", os.path.join(model_dir, "model.ckpt-12"), 12)
    assert [os.path.basename(p) for p in layout.tf_checkpoint_paths(model_dir)] == ["model.ckpt-5", "model.ckpt-12"]
    # Names relative to the directory (as convert/to_tf.py writes them) survive a move, as in tf.train.
    moved = str(tmp_path / "b")
    shutil.move(model_dir, moved)
    with open(os.path.join(moved, "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "model.ckpt-12"\nall_model_checkpoint_paths: "model.ckpt-12"\n')
    expected = os.path.join(moved, "model.ckpt-12")
    assert layout.latest_tf_checkpoint(moved) == tf.train.latest_checkpoint(moved) == expected
    os.remove(os.path.join(moved, "model.ckpt-12.index"))  # a prefix without its index is no checkpoint
    assert layout.latest_tf_checkpoint(moved) is None and tf.train.latest_checkpoint(moved) is None


def test_torch_checkpoints_are_found_by_their_own_names_only(tmp_path):
    model_dir = str(tmp_path)
    assert layout.latest_checkpoint(model_dir) is None
    os.makedirs(os.path.join(model_dir, layout.TORCH_CHECKPOINT_DIR))
    for name in ("step-20.pt", "step-100.pt", ".step-200.pt.x1y2.tmp", "step-300.pt.partial"):
        open(os.path.join(model_dir, layout.TORCH_CHECKPOINT_DIR, name), "w").close()
    assert [s for s, _ in layout.torch_checkpoints(model_dir)] == [20, 100]
    assert layout.latest_checkpoint(model_dir) == ("torch", layout.torch_checkpoint_path(model_dir, 100), 100)
    save_tf_checkpoints(model_dir, [150])  # both kinds: the higher step is the newest
    assert layout.latest_checkpoint(model_dir)[::2] == ("tf", 150)
