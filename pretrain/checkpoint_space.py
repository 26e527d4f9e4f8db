"""A checkpoint that does not fit is refused before it is written, and one that failed is cleared away.

TensorFlow's saver writes a checkpoint's data under a temporary name and updates the
``checkpoint`` state file only after the files are complete, so a save that fails on a full
disk leaves the state pointing at the previous checkpoint: a rerun resumes from it. What
it can leave behind are the failed save's partial files, which take the space the next
try needs and look like a checkpoint to a person. ``check_room`` refuses a save the
disk cannot hold (the variables' size, measured before the save); ``clear_failed_save``
removes the leftovers of one that failed anyway. The torch backend writes each checkpoint
under a temporary name and renames it (pretrain/torch_backend/checkpoint.py), so the same holds
there. No TensorFlow here: the TF backend's saver listener is pretrain/tf_backend/hooks.py.
"""
import glob
import os
import re
import shutil

from pretrain import layout
from util import disk_space
from util.errors import UserInputError

# The index, the meta graph of the first save and the filesystem's blocks, beyond the variables.
OVERHEAD_BYTES = 1 << 20


def kept_note(model_dir):
    last = layout.latest_checkpoint(model_dir)
    if not last:
        return "no checkpoint was saved; a rerun starts from step 0"
    _, path, step = last
    return f"{os.path.basename(path)} (step {step}) is intact and a rerun resumes from it"


def check_room(model_dir, needed, step):
    """One line, before a save, when the model dir's disk cannot hold ``needed`` bytes more."""
    if layout.is_remote(model_dir):
        return
    free = disk_space.free_bytes(model_dir)
    if free is not None and free < needed:
        raise UserInputError(disk_space.full_disk_message(
            model_dir, f"model dir (checkpoint at step {int(step)})", needed=needed, kept=kept_note(model_dir)))


def clear_failed_save(model_dir):
    """Remove what a write cut short left: checkpoints the state file does not list, TensorFlow's
    temporaries (``graph.pbtxt.tmp<hex>``); say what is kept."""
    if "://" in model_dir or not os.path.isdir(model_dir):
        return None
    for name in os.listdir(model_dir):  # TensorFlow's atomic writes (graph.pbtxt, checkpoint) cut short
        if re.search(r"\.tmp[0-9a-f]{32}$", name):
            os.remove(os.path.join(model_dir, name))
    listed = {os.path.basename(p) for p in layout.tf_checkpoint_paths(model_dir)}
    for path in glob.glob(os.path.join(glob.escape(model_dir), "model.ckpt-*")):
        name = os.path.basename(path)
        prefix = name.split(".data-")[0].split(".index")[0].split(".meta")[0].split("_temp")[0]
        if prefix in listed:
            continue
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)
    torch_dir = os.path.join(model_dir, layout.TORCH_CHECKPOINT_DIR)
    if os.path.isdir(torch_dir):  # the torch backend's saves cut short (util.files.atomic_write's temporaries)
        for name in os.listdir(torch_dir):
            if name.endswith(".tmp"):
                os.remove(os.path.join(torch_dir, name))
    return kept_note(model_dir)
