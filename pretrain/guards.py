"""Stop pre-training at the first non-finite loss or weights, before they reach a checkpoint.

fp16 on GPUs skips a step whose gradients overflow (dynamic loss scaling), but in fp32 and
bf16 a NaN or infinite loss means the weights are, or are about to be, garbage; training on
would only overwrite the good checkpoints with bad ones. So each backend checks every step's
loss (``check_loss``) and the weights right before every save (``check_weights``), and stops
with ``NonFiniteTrainingError``, a UserInputError: run_cli prints one line naming the step.
Nothing is saved on the way out, so the newest checkpoint is the last good one and a rerun
resumes from it.

No TensorFlow here. The TF backend runs these from an Estimator hook and a saver listener
(pretrain/tf_backend/hooks.py), which must be two guards there because of the order the
Estimator runs its hooks in: its CheckpointSaverHook runs before any loss check, so a
checkpoint due at the very step whose update turned the weights into NaN would be written
first. The torch loop (pretrain/torch_backend/train.py) checks the loss, then the weights
before it saves.
"""
import math
import os

from pretrain import layout
from util.errors import UserInputError


class NonFiniteTrainingError(UserInputError):
    """The loss or the weights stopped being finite; the message says how to resume."""


def stop_message(what, step, model_dir, learning_rate):
    last = layout.latest_checkpoint(model_dir)
    kept = f"the last good checkpoint {os.path.basename(last[1])} is kept" if last else "no checkpoint was saved"
    return (f"{what} at train step {step}; stopped without saving, {kept} in {model_dir}: to resume from it, "
            f"rerun the same command with a lower learning rate, e.g. --hparams "
            f"'{{\"learning_rate\": {learning_rate / 2:g}}}' (now {learning_rate:g})")


def check_loss(loss, step, model_dir, learning_rate):
    """Raise NonFiniteTrainingError when ``loss`` (a float) is NaN or infinite; ``step`` counts the failed step."""
    if not math.isfinite(loss):
        raise NonFiniteTrainingError(stop_message(f"loss is {float(loss)}", int(step), model_dir, learning_rate))


def check_weights(all_finite, step, model_dir, learning_rate):
    """Raise NonFiniteTrainingError before a save whose weights are not all finite."""
    if not all_finite:
        raise NonFiniteTrainingError(stop_message("the weights became NaN or infinite", int(step), model_dir,
                                                  learning_rate))
