"""A checkpoint that does not fit is refused before it is written, and one that failed is cleared away.

TensorFlow's saver writes a checkpoint's data under a temporary name and updates the
``checkpoint`` state file only after the files are complete, so a save that fails on a full
disk leaves the state pointing at the previous checkpoint: a rerun resumes from it. What
it can leave behind are the failed save's partial files, which take the space the next
try needs and look like a checkpoint to a person. ``FreeSpaceListener`` refuses a save the
disk cannot hold (the variables' size, measured before the save); ``clear_failed_save``
removes the leftovers of one that failed anyway.
"""
import glob
import os
import re
import shutil

import tensorflow.compat.v1 as tf

from util import disk_space
from util.errors import UserInputError

# The index, the meta graph of the first save and the filesystem's blocks, beyond the variables.
OVERHEAD_BYTES = 1 << 20


def kept_note(model_dir):
    last = tf.train.latest_checkpoint(model_dir)
    if not last:
        return "no checkpoint was saved; a rerun starts from step 0"
    step = int(tf.train.load_variable(last, "global_step"))
    return f"{os.path.basename(last)} (step {step}) is intact and a rerun resumes from it"


class FreeSpaceListener(tf.estimator.CheckpointSaverListener):
    """Stops training with one line when the model dir's disk cannot hold the next checkpoint."""

    def __init__(self, model_dir):
        self.model_dir = model_dir

    def begin(self):
        self.needed = OVERHEAD_BYTES + sum(v.shape.num_elements() * v.dtype.base_dtype.size
                                           for v in tf.global_variables())

    def before_save(self, session, global_step_value):
        if "://" in self.model_dir:
            return
        free = disk_space.free_bytes(self.model_dir)
        if free is not None and free < self.needed:
            raise UserInputError(disk_space.full_disk_message(
                self.model_dir, f"model dir (checkpoint at step {int(global_step_value)})", needed=self.needed,
                kept=kept_note(self.model_dir)))


def clear_failed_save(model_dir):
    """Remove what a write cut short left: checkpoints the state file does not list, TensorFlow's
    temporaries (``graph.pbtxt.tmp<hex>``); say what is kept."""
    if "://" in model_dir or not os.path.isdir(model_dir):
        return None
    for name in os.listdir(model_dir):  # TensorFlow's atomic writes (graph.pbtxt, checkpoint) cut short
        if re.search(r"\.tmp[0-9a-f]{32}$", name):
            os.remove(os.path.join(model_dir, name))
    state = tf.train.get_checkpoint_state(model_dir)
    listed = {os.path.basename(p) for p in (state.all_model_checkpoint_paths if state else [])}
    for path in glob.glob(os.path.join(glob.escape(model_dir), "model.ckpt-*")):
        name = os.path.basename(path)
        prefix = name.split(".data-")[0].split(".index")[0].split(".meta")[0].split("_temp")[0]
        if prefix in listed:
            continue
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)
    return kept_note(model_dir)
