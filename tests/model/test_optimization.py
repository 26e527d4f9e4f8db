"""AdamW's weight-decay exclusions, the warmup/decay schedule and the loss-scale skip on overflow."""
import numpy as np
import tensorflow.compat.v1 as tf

from model import optimization


def test_weight_decay_skips_layer_norm_and_biases():
    opt = optimization.AdamWeightDecay(0.1, weight_decay_rate=0.01)
    assert opt.uses_weight_decay("electra/encoder/layer_0/intermediate/dense/kernel")
    assert opt.uses_weight_decay("electra/embeddings/word_embeddings")
    assert not opt.uses_weight_decay("electra/encoder/layer_0/output/LayerNorm/gamma")
    assert not opt.uses_weight_decay("electra/encoder/layer_0/output/dense/bias")
    assert not opt.uses_weight_decay("generator_predictions/output_bias")


def test_schedule_warms_up_linearly_then_decays_to_zero():
    graph = tf.Graph()
    with graph.as_default():
        step = tf.placeholder(tf.int64, [])
        lr = optimization.learning_rate_schedule(step, 1e-3, 100, 10, 1.0)
        with tf.Session() as session:
            values = [session.run(lr, {step: s}) for s in (0, 5, 10, 55, 100)]
    assert np.allclose(values, [0.0, 1e-3 * 0.5 * 0.95, 1e-3 * 0.9, 1e-3 * 0.45, 0.0], atol=1e-9)


def test_loss_scaling_skips_a_step_with_non_finite_gradients():
    graph = tf.Graph()
    with graph.as_default():
        weight = tf.get_variable("w/kernel", initializer=tf.constant([1.0, -2.0, 3.0]))
        blowup = tf.placeholder(tf.float32, [])
        # blowup = inf makes every gradient non-finite, as a float16 overflow would.
        loss = tf.reduce_sum(tf.square(weight)) * blowup
        train_op, _, scale, _ = optimization.create_train_op(loss, 0.1, 100, weight_decay_rate=0.01,
                                                          num_warmup_steps=0, loss_scaling=True)
        step = tf.train.get_or_create_global_step()
        slots = [v for v in tf.global_variables() if "adam" in v.name]
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            before, scale_before = session.run([weight, scale])
            session.run(train_op, {blowup: np.inf})
            after, scale_after, slot_values, steps = session.run([weight, scale, slots, step])
            assert np.array_equal(before, after), "the overflowing step must not touch the weights"
            assert all(np.isfinite(s).all() and not s.any() for s in slot_values)
            assert scale_after == scale_before / 2
            assert steps == 1
            session.run(train_op, {blowup: 1.0})
            moved, scale_final = session.run([weight, scale])
    assert np.isfinite(moved).all() and not np.array_equal(moved, before)
    assert scale_final == scale_after


def test_adamw_update_matches_the_formula():
    graph = tf.Graph()
    with graph.as_default():
        weight = tf.get_variable("dense/kernel", initializer=tf.constant([0.5, -1.0]))
        loss = tf.reduce_sum(weight * tf.constant([2.0, 4.0]))
        train_op, _, _, _ = optimization.create_train_op(loss, 0.1, 1000, weight_decay_rate=0.01,
                                                      num_warmup_steps=0, lr_decay_power=1.0, clip_norm=1e9)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            session.run(train_op)
            result = session.run(weight)
    grad = np.array([2.0, 4.0])
    m, v = 0.1 * grad, 0.001 * grad ** 2
    update = m / (np.sqrt(v) + 1e-6) + 0.01 * np.array([0.5, -1.0])
    assert np.allclose(result, np.array([0.5, -1.0]) - 0.1 * update, atol=1e-6)
