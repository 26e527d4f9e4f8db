"""The Estimator hooks and saver listeners that feed the backend-neutral step log, collapse
monitor and guards (pretrain/step_log.py, monitor.py, guards.py, checkpoint_space.py).

A hook fetches ``global_step`` before the step's increment, so the steps done are that + 1.
"""
import numpy as np
import tensorflow.compat.v1 as tf

from pretrain import checkpoint_space, guards
from pretrain.monitor import CollapseMonitor
from pretrain.step_log import StepLog


class SummaryWriter:
    """``add_scalar(tag, value, step)`` onto the Estimator's own event file in ``directory``."""

    def __init__(self, directory):
        self.writer = tf.summary.FileWriterCache.get(directory)

    def add_scalar(self, tag, value, step):
        self.writer.add_summary(tf.Summary(value=[tf.Summary.Value(tag=tag, simple_value=value)]), step)


class StepLogHook(tf.estimator.SessionRunHook):
    """pretrain.step_log.StepLog after every step; ``real_tokens`` (if among the tensors) is the
    step's count of non-padding positions, summed into the real tokens/s."""

    def __init__(self, tensors, config, every, summary_dir=None):
        self.tensors, self.config, self.every, self.summary_dir = tensors, config, every, summary_dir

    def begin(self):
        self.global_step = tf.train.get_or_create_global_step()
        writer = SummaryWriter(self.summary_dir) if self.summary_dir else None
        self.log = StepLog(self.config, self.every, writer)

    def before_run(self, run_context):
        return tf.estimator.SessionRunArgs({"step": self.global_step, **self.tensors})

    def after_run(self, run_context, run_values):
        values = dict(run_values.results)
        step = values.pop("step") + 1
        real = values.pop("real_tokens", None)
        self.log.update(step, values, None if real is None else float(real))


class CollapseMonitorHook(tf.estimator.SessionRunHook):
    """pretrain.monitor.CollapseMonitor after every step, on the batch's real-token figures."""

    def __init__(self, tensors, num_warmup_steps, every, printer=None):
        self.tensors = {k: tensors[k] for k in CollapseMonitor.KEYS}
        self.monitor = CollapseMonitor(num_warmup_steps, every, printer)

    def begin(self):
        self.global_step = tf.train.get_or_create_global_step()

    def before_run(self, run_context):
        return tf.estimator.SessionRunArgs({"step": self.global_step, **self.tensors})

    def after_run(self, run_context, run_values):
        values = dict(run_values.results)
        self.monitor.update(values.pop("step") + 1, values)


class NonFiniteLossHook(tf.estimator.SessionRunHook):
    """Raises NonFiniteTrainingError after the first step whose loss is NaN or infinite.

    Passed to ``train(hooks=...)`` it runs before the Estimator's own NanTensorHook (which
    stops with a traceback and ignores infinities).
    """

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
            guards.check_loss(float(run_values.results), step, self.model_dir, self.learning_rate)


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
        guards.check_weights(session.run(self._all_finite), global_step_value, self.model_dir, self.learning_rate)


class FreeSpaceListener(tf.estimator.CheckpointSaverListener):
    """Stops training with one line when the model dir's disk cannot hold the next checkpoint."""

    def __init__(self, model_dir):
        self.model_dir = model_dir

    def begin(self):
        self.needed = checkpoint_space.OVERHEAD_BYTES + sum(v.shape.num_elements() * v.dtype.base_dtype.size
                                                            for v in tf.global_variables())

    def before_save(self, session, global_step_value):
        checkpoint_space.check_room(self.model_dir, self.needed, global_step_value)


def train_kwargs(config, precision):
    """``hooks`` and ``saving_listeners`` for ``Estimator.train``. fp16 gets only the weights
    check (it skips overflowing steps itself); multi_worker only the loss check (the
    Estimator takes no saving listeners there)."""
    hooks = [] if precision == "fp16_gpu" else [NonFiniteLossHook(config.model_dir, config.learning_rate)]
    if config.distribution == "multi_worker":
        return {"hooks": hooks}
    return {"hooks": hooks, "saving_listeners": [FiniteWeightsListener(config.model_dir, config.learning_rate),
                                                 FreeSpaceListener(config.model_dir)]}
