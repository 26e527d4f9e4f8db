"""Where things are in a model directory, for both backends, without importing TensorFlow.

The TF backend writes TF-v1 checkpoints as the Estimator names them: ``model.ckpt-<step>.*``
and a ``checkpoint`` state file naming the newest. The torch backend writes its own under
``torch_checkpoints/step-<step>.pt`` (pretrain/torch_backend/checkpoint.py): a different
directory and suffix, so neither backend, nor a person, can take one kind for the other.

Local paths are read with ``os``; a ``gs://`` path (the TF backend on Cloud TPU) goes through
``tf.io.gfile``, imported only then.
"""
import glob as _glob
import os
import re

CONFIG_NAME = "pretrain_config.json"
TF_STATE_NAME = "checkpoint"  # the TF saver's state file
TORCH_CHECKPOINT_DIR = "torch_checkpoints"
TORCH_CHECKPOINT_PATTERN = re.compile(r"^step-(\d+)\.pt$")


def is_remote(path):
    return "://" in os.fspath(path)


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def exists(path):
    return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def isdir(path):
    return _gfile().isdir(path) if is_remote(path) else os.path.isdir(path)


def glob(pattern):
    return _gfile().glob(pattern) if is_remote(pattern) else _glob.glob(pattern)


def read_text(path):
    if is_remote(path):
        with _gfile().GFile(path) as f:
            return f.read()
    with open(path, encoding="utf-8") as f:
        return f.read()


def tf_checkpoint_paths(model_dir):
    """The checkpoint prefixes the TF state file lists, oldest first (the newest last), or []."""
    state = os.path.join(model_dir, TF_STATE_NAME)
    if not exists(state):
        return []
    paths = re.findall(r'^all_model_checkpoint_paths:\s*"(.*)"\s*$', read_text(state), re.M)
    newest = re.findall(r'^model_checkpoint_path:\s*"(.*)"\s*$', read_text(state), re.M)
    if newest and (not paths or paths[-1] != newest[0]):
        paths.append(newest[0])
    # The saver writes names relative to the directory; a moved directory keeps working.
    return [p if os.path.isabs(p) or is_remote(p) else os.path.join(model_dir, p) for p in paths]


def latest_tf_checkpoint(model_dir):
    """What ``tf.train.latest_checkpoint`` returns: the newest prefix whose ``.index`` is there, or None."""
    if not isdir(model_dir):
        return None
    paths = tf_checkpoint_paths(model_dir)
    if paths and exists(paths[-1] + ".index"):
        return paths[-1]
    return None


def tf_checkpoint_step(prefix):
    """The step of a checkpoint the Estimator saved (``model.ckpt-<global_step>``); else its global_step."""
    match = re.search(r"-(\d+)$", prefix)
    if match:
        return int(match.group(1))
    import tensorflow.compat.v1 as tf

    return int(tf.train.load_variable(prefix, "global_step"))


def torch_checkpoints(model_dir):
    """[(step, path)] of the torch backend's finished checkpoints, oldest first."""
    directory = os.path.join(model_dir, TORCH_CHECKPOINT_DIR)
    if is_remote(model_dir) or not os.path.isdir(directory):
        return []
    found = [(int(m.group(1)), os.path.join(directory, name))
             for name in os.listdir(directory) for m in [TORCH_CHECKPOINT_PATTERN.match(name)] if m]
    return sorted(found)


def torch_checkpoint_path(model_dir, step):
    return os.path.join(model_dir, TORCH_CHECKPOINT_DIR, f"step-{step}.pt")


def latest_checkpoint(model_dir, kind=None):
    """(backend, path, step) of the model dir's newest checkpoint of either kind (or of ``kind``,
    "tf" or "torch"), or None.

    A directory holding both kinds (one converted beside the other by convert/torch_tf.py, then
    continued) answers with the higher step, and with the TF one on a tie.
    """
    found = []
    tf_prefix = latest_tf_checkpoint(model_dir) if kind in (None, "tf") else None
    if tf_prefix:
        found.append(("tf", tf_prefix, tf_checkpoint_step(tf_prefix)))
    torch = torch_checkpoints(model_dir) if kind in (None, "torch") else []
    if torch:
        found.append(("torch", torch[-1][1], torch[-1][0]))
    return max(found, key=lambda f: f[2]) if found else None
