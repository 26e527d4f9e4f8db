"""Stop pre-training at the first non-finite loss or weights, before they reach a checkpoint.

fp16 on GPUs skips a step whose gradients overflow (dynamic loss scaling), but in fp32 and
bf16 a NaN or infinite loss means the weights are, or are about to be, garbage; training on
would only overwrite the good checkpoints with bad ones. Two guards, because of the order
in which the Estimator runs its hooks after a step:

1. the CheckpointSaverHook runs first (a chief-only hook), so a checkpoint due at the very
   step whose update turned the weights into NaN would be written before any loss check.
   ``FiniteWeightsListener`` checks the weights right before every save, the final one in
   ``train()`` included, and refuses the save;
2. ``NonFiniteLossHook`` checks each step's loss. Passed to ``train(hooks=...)`` it runs
   before the Estimator's own NanTensorHook (which stops with a traceback and ignores
   infinities).

Both raise ``NonFiniteTrainingError``, a UserInputError, so run_cli prints one line naming
the step; nothing is saved on the way out (the Estimator saves only on a clean exit), so
the newest checkpoint is the last good one and a rerun resumes from it.
"""
import os

import numpy as np
import tensorflow.compat.v1 as tf

from util.errors import UserInputError


class NonFiniteTrainingError(UserInputError):
    """The loss or the weights stopped being finite; the message says how to resume."""


def stop_message(what, step, model_dir, learning_rate):
    last = tf.train.latest_checkpoint(model_dir)
    kept = f"the last good checkpoint {os.path.basename(last)} is kept" if last else "no checkpoint was saved"
    return (f"{what} at train step {step}; stopped without saving, {kept} in {model_dir}: to resume from it, "
            f"rerun the same command with a lower learning rate, e.g. --hparams "
            f"'{{\"learning_rate\": {learning_rate / 2:g}}}' (now {learning_rate:g})")


class NonFiniteLossHook(tf.estimator.SessionRunHook):
    """Raises NonFiniteTrainingError after the first step whose loss is NaN or infinite."""

    def __init__(self, model_dir, learning_rate):
        self.model_dir, self.learning_rate = model_dir, learning_rate

    def begin(self):
        # The Estimator adds the spec's loss to LOSSES last, just before it creates the
        # session (and so before begin()); a model's own tf.losses come earlier.
        self._loss = tf.get_collection(tf.GraphKeys.LOSSES)[-1]
        self._global_step = tf.train.get_or_create_global_step()

    def before_run(self, run_context):
        return tf.estimator.SessionRunArgs(self._loss)

    def after_run(self, run_context, run_values):
        if not np.isfinite(run_values.results):
            # Read global_step now, not beside the loss: fetched in the same run as the train op
            # it may be read before or after the increment (no ordering between them). After the
            # step it counts the steps done, the failed one included, as the logs number them.
            step = run_context.session.run(self._global_step)
            raise NonFiniteTrainingError(stop_message(f"loss is {float(run_values.results)}", int(step),
                                                      self.model_dir, self.learning_rate))


class FiniteWeightsListener(tf.estimator.CheckpointSaverListener):
    """Refuses a checkpoint whose trainable weights hold a NaN or an infinity."""

    def __init__(self, model_dir, learning_rate):
        self.model_dir, self.learning_rate = model_dir, learning_rate

    def begin(self):
        # Built here, before the graph is finalized; run only at save time, so it costs one
        # pass over the weights per checkpoint, not per step.
        self._all_finite = tf.reduce_all(tf.stack([tf.reduce_all(tf.is_finite(v))
                                                   for v in tf.trainable_variables()]))

    def before_save(self, session, global_step_value):
        if not session.run(self._all_finite):
            raise NonFiniteTrainingError(stop_message("the weights became NaN or infinite", int(global_step_value),
                                                      self.model_dir, self.learning_rate))


def train_kwargs(config, precision):
    """``hooks`` and ``saving_listeners`` for ``Estimator.train``. fp16 gets only the weights
    check (it skips overflowing steps itself); multi_worker only the loss check (the
    Estimator takes no saving listeners there)."""
    hooks = [] if precision == "fp16_gpu" else [NonFiniteLossHook(config.model_dir, config.learning_rate)]
    if config.distribution == "multi_worker":
        return {"hooks": hooks}
    from pretrain.checkpoint_space import FreeSpaceListener

    return {"hooks": hooks, "saving_listeners": [FiniteWeightsListener(config.model_dir, config.learning_rate),
                                                 FreeSpaceListener(config.model_dir)]}
