"""Which checkpoint a resumed pretraining run continues from, past damaged files.

A model directory copied while a run saved, or filled up, can hold a newest checkpoint that
does not read: TensorFlow then fails deep in its restore (``IndexError: Read less bytes than
requested``, ``The passed save_path is not a valid checkpoint``, ``Invalid checkpoint
state``, ``UnicodeDecodeError``), and torch.load with ``PytorchStreamReader failed`` or an
``UnpicklingError``. Both backends look before anything reads a step or restores:

- ``tf_resume``: the TF state file and each checkpoint's index and shard sizes
  (pretrain/checkpoint_state.py, a stat per shard). Past a damaged file, one note names it,
  and the state file is pointed at the newest intact checkpoint, which the Estimator (or a
  torch run continuing a converted checkpoint) then restores; the damaged newer files stay
  until the run's own save at their step replaces them.
- ``torch_resume``: the torch backend's own ``step-N.pt``, newest first, each read in full
  (the file is what a resume loads anyway).

With nothing intact, one error line names the newest damaged file and the fix. Checking
every tensor's crc32c would read all of every checkpoint; bytes changed inside a ``.data``
shard (which leave its size alone) are named when the restore fails
(pretrain/damage_check.py).
"""
import os

from pretrain import checkpoint_state, layout
from util.errors import UserInputError

START_OVER = "copy the checkpoint files again, or remove them to start from step 0"


def _note(damaged_path, reason, used):
    return f"note: {damaged_path} is damaged ({reason}); using {os.path.basename(used)}, the newest intact checkpoint"


def tf_resume(model_dir, printer=print):
    """Point the TF state file past damaged checkpoints; the Choice resumed from, or None."""
    if layout.is_remote(model_dir) or not os.path.isdir(model_dir):
        return None
    choice = checkpoint_state.newest_intact(model_dir, fix=START_OVER)
    if choice is not None and choice.damaged:
        for problem in choice.damaged:
            printer(_note(problem.path, problem.reason, choice.prefix))
        checkpoint_state.write_state(model_dir, choice.prefix)
    return choice


def torch_resume(model_dir, printer=print):
    """(state, path, step) of the newest torch checkpoint that loads, or None when there is none."""
    from pretrain.torch_backend import checkpoint

    damaged = []
    for step, path in reversed(layout.torch_checkpoints(model_dir)):
        try:
            state = checkpoint.load(path)
        except checkpoint_state.Damaged as e:
            damaged.append(e)
            continue
        for problem in damaged:
            printer(_note(problem.path, problem.reason, path))
        return state, path, step
    if damaged:
        newest = damaged[0]
        raise UserInputError(f"{newest.path}: damaged torch checkpoint ({newest.reason}), and no intact one in "
                             f"{os.path.dirname(newest.path)}; {START_OVER}")
    return None
