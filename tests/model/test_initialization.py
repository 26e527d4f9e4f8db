"""Every variable starts as upstream ELECTRA's graph starts it.

Upstream builds most kernels and embeddings with ``truncated_normal(stddev=initializer_range)``
but two layers with ``tf.layers.dense``'s default, Glorot uniform: the discriminator's output
layer ``discriminator_predictions/dense_1`` and ``<scope>/embeddings_project``. Issue 13 traced a
discriminator that never learned to those two starting 9x and 5x too small.
"""
import math

import numpy as np
import tensorflow.compat.v1 as tf

from configure_pretraining import PretrainingConfig
from model.electra_model import PretrainingModel

from tests.pretrain.conftest import make_examples, tiny_hparams

GLOROT = ("discriminator_predictions/dense_1/kernel", "electra/embeddings_project/kernel",
          "generator/embeddings_project/kernel")
ONES = ("/gamma",)
ZEROS = ("/beta", "/bias", "output_bias")


def initial_values(**overrides):
    hparams = tiny_hparams(vocab_size=300, hidden_size=128, embedding_size=64, intermediate_size=512,
                           num_attention_heads=2, generator_hidden_size=0.75, **overrides)
    config = PretrainingConfig("m", "d", **hparams)
    config.validate()
    config.mask_id, config.special_ids = 4, (2, 3, 4, 0)
    rows = make_examples(4, 64, 300)
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        features = {name: tf.constant(np.array([r[i] for r in rows], np.int32))
                    for i, name in enumerate(("input_ids", "input_mask", "segment_ids"))}
        PretrainingModel(config, features, is_training=True)
        variables = tf.global_variables()
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            return dict(zip([v.op.name for v in variables], session.run(variables)))


def test_each_variable_has_upstreams_initializer():
    values = initial_values()
    assert set(GLOROT) <= set(values), sorted(values)
    for name, value in values.items():
        if name in GLOROT:
            fan_in, fan_out = value.shape
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            assert np.abs(value).max() <= limit + 1e-6, name
            # Uniform on [-limit, limit] has std limit/sqrt(3); a truncated normal 0.02 has ~0.0176.
            assert abs(value.std() - limit / math.sqrt(3)) < 0.15 * limit / math.sqrt(3), name
        elif name.endswith(ONES):
            assert np.all(value == 1.0), name
        elif name.endswith(ZEROS):
            assert np.all(value == 0.0), name
        else:  # kernels and embedding tables: truncated normal, stddev initializer_range
            assert np.abs(value).max() <= 2 * 0.02 + 1e-6, name
            assert 0.80 * 0.0176 < value.std() < 1.2 * 0.0176, name


def test_discriminator_output_starts_at_glorot_scale_not_0_02():
    kernel = initial_values()["discriminator_predictions/dense_1/kernel"]
    # sqrt(2 / (128 + 1)) = 0.125: seven times the 0.0176 that starved the encoder of gradient.
    assert kernel.std() > 0.1
