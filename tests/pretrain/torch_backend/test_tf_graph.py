"""The torch network's variables against our TF graph's (model/electra_model.py): names, shapes, initialisers."""
import numpy as np
import pytest
import torch

from pretrain.torch_backend.model import ElectraPretrainer, tf_variable_names

from .tiny_config import make_config

SETTINGS = {"default": {}, "untied_embeddings": {"untied_generator_embeddings": True},
            "tied_generator": {"untied_generator": False}, "uniform": {"uniform_generator": True},
            "bert": {"electra_objective": False},
            "narrow_generator_embeddings": {"untied_generator_embeddings": True, "generator_embedding_size": 16}}
# Wide enough that every random tensor has thousands of values, except the output layer's [128, 1].
WIDE = {"hidden_size": 128, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 512,
        "max_position_embeddings": 64}


def config_for(vocab_dir, sizes, **overrides):
    return make_config(vocab_dir, sizes, seq=64, embedding_size=64, **overrides)


def tf_graph_variables(config, seed=0):
    """{name: initial value} of the trainable variables of our TF PretrainingModel."""
    import tensorflow.compat.v1 as tf

    from model.electra_model import PretrainingModel

    with tf.Graph().as_default():
        tf.set_random_seed(seed)
        shape = [2, config.max_seq_length]
        features = {k: tf.ones(shape, tf.int32) for k in ("input_ids", "input_mask", "segment_ids")}
        PretrainingModel(config, features, is_training=True)
        variables = tf.trainable_variables()
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            return dict(zip([v.op.name for v in variables], sess.run(variables)))


def torch_variables(config, seed=0):
    from pretrain.torch_backend.tf_checkpoint import tf_checkpoint_arrays

    torch.manual_seed(seed)
    model = ElectraPretrainer(config)
    return model, tf_checkpoint_arrays(model)


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_every_tf_variable_has_one_torch_parameter_of_its_shape(sample_vocab_dir, setting):
    config = config_for(sample_vocab_dir, dict(WIDE, num_hidden_layers=2), **SETTINGS[setting])
    tf_values = tf_graph_variables(config)
    model, arrays = torch_variables(config)
    assert {k: v.shape for k, v in arrays.items()} == {k: v.shape for k, v in tf_values.items()}
    assert len(tf_variable_names(model)) == len(tf_values)


def test_initialisers_draw_what_the_tf_graph_draws(sample_vocab_dir):
    from scipy import stats

    config = config_for(sample_vocab_dir, WIDE)
    tf_values = tf_graph_variables(config)
    _, arrays = torch_variables(config)
    glorot = {"electra/embeddings_project/kernel", "generator/embeddings_project/kernel",
              "discriminator_predictions/dense_1/kernel"}
    for name, expected in tf_values.items():
        ours = arrays[name]
        if len(np.unique(expected)) == 1:  # LayerNorm gamma 1, beta 0, every bias 0
            assert (ours == expected.flat[0]).all(), name
            continue
        # Same distribution: two-sample Kolmogorov-Smirnov on the values (fixed seeds, so no flakes).
        assert stats.ks_2samp(ours.ravel(), expected.ravel()).pvalue > 1e-3, name
        fan_in, fan_out = expected.shape if name.endswith("kernel") else (None, None)
        if name in glorot:
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            assert np.abs(ours).max() <= limit and np.abs(ours).max() > 0.9 * limit, name
        else:  # truncated normal at 0.02: nothing beyond 2 standard deviations, and close to them
            assert np.abs(ours).max() <= 0.04 and (ours.size < 1000 or np.abs(ours).max() > 0.039), name
    # The checks above can tell the two apart: Glorot's [128, 1] output layer is not normal at 0.02.
    assert stats.ks_2samp(arrays["discriminator_predictions/dense_1/kernel"].ravel(),
                          tf_values["discriminator_predictions/dense/kernel"].ravel()).pvalue < 1e-6
