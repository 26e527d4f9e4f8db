"""AdamW with linear warmup and polynomial decay, global-norm clipping, and dynamic loss scaling.

The optimizer is upstream ELECTRA's ``AdamWeightDecayOptimizer`` in behaviour (no bias
correction; decay is added to the update, skipping LayerNorm and biases), so its slot
variables keep upstream's names ``<param>/adam_m`` and ``<param>/adam_v``.

Loss scaling (for float16 on GPU) multiplies the loss before differentiating so small
gradients survive float16, divides the gradients back, and if any gradient is not finite
leaves every weight and slot untouched for that step and halves the scale; after
``growth_interval`` finite steps in a row the scale doubles.

Under a ``tf.distribute`` strategy (MirroredStrategy, MultiWorkerMirroredStrategy) each
replica's gradients are averaged across replicas first, so clipping, the finiteness test
and the update see the global batch's gradient exactly as one device would; every replica
then updates its own copy of each variable with that same gradient (no second transfer).
"""

import re

import tensorflow.compat.v1 as tf

EXCLUDE_FROM_WEIGHT_DECAY = ("LayerNorm", "layer_norm", "bias")


def learning_rate_schedule(global_step, learning_rate, num_train_steps, num_warmup_steps, lr_decay_power):
    """Polynomial decay to 0 over num_train_steps, scaled by a linear warmup."""
    lr = tf.train.polynomial_decay(learning_rate, global_step, num_train_steps, end_learning_rate=0.0,
                                   power=lr_decay_power, cycle=False)
    if num_warmup_steps > 0:
        lr *= tf.minimum(1.0, tf.cast(global_step, tf.float32) / float(num_warmup_steps))
    return lr


class AdamWeightDecay:
    """Adam with decoupled weight decay, as BERT/ELECTRA train it."""

    def __init__(self, learning_rate, weight_decay_rate=0.0, beta_1=0.9, beta_2=0.999, epsilon=1e-6,
                 exclude_from_weight_decay=EXCLUDE_FROM_WEIGHT_DECAY):
        self.learning_rate = learning_rate
        self.weight_decay_rate = weight_decay_rate
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.exclude = exclude_from_weight_decay

    def uses_weight_decay(self, name):
        return bool(self.weight_decay_rate) and not any(re.search(r, name) for r in self.exclude)

    def slots(self, param):
        """The two moment variables, named ``<param>/adam_m`` and ``<param>/adam_v`` as upstream."""
        name = param.op.name
        return [tf.get_variable(f"{name}/adam_{k}", param.shape, tf.float32, tf.zeros_initializer(), trainable=False)
                for k in ("m", "v")]

    def update(self, param, grad, m, v, apply=None):
        """One variable's update ops (on one device's copy under a strategy)."""
        grad = tf.convert_to_tensor(grad)
        next_m = self.beta_1 * m + (1.0 - self.beta_1) * grad
        next_v = self.beta_2 * v + (1.0 - self.beta_2) * tf.square(grad)
        update = next_m / (tf.sqrt(next_v) + self.epsilon)
        if self.uses_weight_decay(param.op.name):
            update += self.weight_decay_rate * param
        next_param = param - self.learning_rate * update
        if apply is not None:
            next_param, next_m, next_v = (tf.where(apply, new, old) for new, old in
                                          ((next_param, param), (next_m, m), (next_v, v)))
        return tf.group(param.assign(next_param), m.assign(next_m), v.assign(next_v))

    def apply_gradients(self, grads_and_vars, apply=None):
        """The update ops; with ``apply`` (a scalar bool tensor) False, every value is kept as it was."""
        grads_and_vars = [(g, p) for g, p in grads_and_vars if g is not None]
        if in_replica_context():
            # Slots must be created, and mirrored variables updated, in cross-replica context.
            return tf.distribute.get_replica_context().merge_call(
                self._distributed_apply, args=(grads_and_vars, apply))
        return tf.group(*[self.update(param, grad, *self.slots(param), apply) for grad, param in grads_and_vars])

    def _distributed_apply(self, strategy, grads_and_vars, apply):
        updates = []
        for grad, param in grads_and_vars:
            with strategy.extended.colocate_vars_with(param):
                m, v = self.slots(param)
            updates.append(strategy.extended.update(param, self.update, args=(grad, m, v, apply), group=True))
        return tf.group(*updates)


class DynamicLossScale:
    """The loss-scale state and its update rule (variables ``loss_scale/{scale,good_steps}``)."""

    def __init__(self, initial_scale=2.0 ** 15, growth_interval=2000):
        # Every replica computes the same update (from all-reduced gradients), so the first's is kept.
        first = tf.VariableAggregation.ONLY_FIRST_REPLICA
        with tf.variable_scope("loss_scale"):
            self.scale = tf.get_variable("scale", [], tf.float32, tf.constant_initializer(initial_scale),
                                         trainable=False, aggregation=first)
            self.good_steps = tf.get_variable("good_steps", [], tf.int64, tf.zeros_initializer(), trainable=False,
                                              aggregation=first)
        self.growth_interval = growth_interval

    def update(self, all_finite):
        grow = tf.logical_and(all_finite, self.good_steps + 1 >= self.growth_interval)
        new_scale = tf.where(all_finite, tf.where(grow, self.scale * 2.0, self.scale),
                             tf.maximum(self.scale / 2.0, 1.0))
        new_good = tf.where(tf.logical_and(all_finite, tf.logical_not(grow)), self.good_steps + 1,
                            tf.zeros_like(self.good_steps))
        return tf.group(self.scale.assign(new_scale), self.good_steps.assign(new_good))


def in_replica_context():
    """True inside a tf.distribute strategy's per-replica code (not the default strategy)."""
    return tf.distribute.has_strategy() and not tf.distribute.in_cross_replica_context()


def all_reduce_mean(values):
    """Average tensors over all replicas in sync (identity without a strategy); None passes through."""
    if not in_replica_context():
        return values
    present = [i for i, value in enumerate(values) if value is not None]

    def mean(strategy, *per_replica):
        # ReplicaContext.all_reduce would wrap this in a custom gradient that looks for each
        # replica's variables by name; nothing here is differentiated, so reduce directly.
        return strategy.extended.batch_reduce_to(tf.distribute.ReduceOp.MEAN, [(v, v) for v in per_replica])

    reduced = tf.distribute.get_replica_context().merge_call(mean, args=tuple(values[i] for i in present))
    result = list(values)
    for i, value in zip(present, reduced):
        result[i] = value
    return result


def all_finite(grads):
    return tf.reduce_all([tf.reduce_all(tf.is_finite(g)) for g in grads if g is not None])


def create_train_op(loss, learning_rate, num_train_steps, weight_decay_rate=0.0, num_warmup_steps=0,
                    lr_decay_power=1.0, num_shards=1, loss_scaling=False, clip_norm=1.0, report=None):
    """Returns (train_op, learning_rate tensor, loss scale tensor or None, report).

    ``report`` (name -> scalar tensor, for logs and summaries) comes back averaged over the
    replicas under a strategy, in the gradients' all-reduce: one all-reduce per step, since
    concurrent collectives can deadlock each other in a graph-mode session.

    The global step advances on every step, skipped ones included, so the schedule and the
    step count stay tied to the data seen.
    """
    report = dict(report or {})
    names = sorted(report)
    global_step = tf.train.get_or_create_global_step()
    lr = learning_rate_schedule(global_step, learning_rate, num_train_steps, num_warmup_steps, lr_decay_power)
    optimizer = AdamWeightDecay(lr, weight_decay_rate)
    tvars = tf.trainable_variables()
    loss = tf.cast(loss, tf.float32)
    scale = DynamicLossScale() if loss_scaling else None
    if scale is not None:
        grads = [None if g is None else tf.cast(g, tf.float32) / scale.scale
                 for g in tf.gradients(loss * scale.scale, tvars)]
    else:
        grads = [None if g is None else tf.cast(g, tf.float32) for g in tf.gradients(loss, tvars)]
    reduced = all_reduce_mean(grads + [tf.cast(report[n], tf.float32) for n in names])
    grads, report = reduced[:len(grads)], dict(zip(names, reduced[len(grads):]))
    finite = all_finite(grads) if scale is not None else None
    if num_shards > 1:
        # CrossShardOptimizer's job, for our own optimizer: average the gradients over the cores.
        grads = [None if g is None else tf.tpu.cross_replica_sum(g) / float(num_shards) for g in grads]
    grads, _ = tf.clip_by_global_norm(grads, clip_norm=clip_norm)
    update = optimizer.apply_gradients(zip(grads, tvars), apply=finite)
    ops = [update]
    if scale is not None:
        with tf.control_dependencies([update]):
            ops.append(scale.update(finite))
    with tf.control_dependencies([update]):
        ops.append(global_step.assign_add(1))
    return tf.group(*ops), lr, (scale.scale if scale is not None else None), report
