"""The model variants build the variables upstream ELECTRA would, and their losses are finite."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from configure_pretraining import PretrainingConfig
from model.electra_model import PretrainingModel, generator_config

from tests.pretrain.conftest import make_examples, tiny_hparams


def build(compute_dtype=tf.float32, **overrides):
    config = PretrainingConfig("m", "d", **tiny_hparams(vocab_size=130, **overrides))
    config.validate()
    config.mask_id, config.special_ids = 4, (2, 3, 4, 0)
    rows = make_examples(8, 64, 130)
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(0)
        features = {name: tf.constant(np.array([r[i] for r in rows], np.int32))
                    for i, name in enumerate(("input_ids", "input_mask", "segment_ids"))}
        model = PretrainingModel(config, features, is_training=True, compute_dtype=compute_dtype)
        names = {v.op.name: v.dtype.base_dtype for v in tf.global_variables()}
        fetches = {"loss": model.total_loss, "weights": model.masked_inputs.masked_lm_weights}
        if model.disc_output is not None:
            fetches["labels"] = model.disc_output.labels
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            values = session.run(fetches)
    assert np.isfinite(values["loss"])
    return config, names, values


def test_electra_default_has_generator_and_discriminator():
    config, names, _ = build()
    assert "generator/encoder/layer_1/output/dense/kernel" in names
    assert "discriminator_predictions/dense_1/kernel" in names
    assert not any(n.startswith("generator/embeddings/") for n in names), "token embeddings are shared"


def test_bert_objective_is_mlm_only_under_electra_scope():
    _, names, _ = build(electra_objective=False)
    assert not any(n.startswith(("generator/", "discriminator_predictions/")) for n in names)
    assert "electra/encoder/layer_1/output/dense/kernel" in names and "generator_predictions/output_bias" in names


def test_tied_generator_reuses_the_discriminator():
    _, names, _ = build(untied_generator=False)
    assert not any(n.startswith("generator/") for n in names)
    assert "discriminator_predictions/dense/kernel" in names


def test_untied_generator_embeddings_get_their_own_table():
    config, names, _ = build(untied_generator_embeddings=True)
    assert "generator/embeddings/word_embeddings" in names and "electra/embeddings/word_embeddings" in names
    assert generator_config(config).embedding_size == generator_config(config).hidden_size


def test_uniform_generator_has_no_generator_weights():
    _, names, _ = build(uniform_generator=True)
    assert not any(n.startswith(("generator/", "generator_predictions/")) for n in names)


@pytest.mark.parametrize("disallow", [True, False])
def test_disallow_correct_makes_every_masked_token_fake(disallow):
    _, _, values = build(disallow_correct=disallow, temperature=0.5)
    replaced, masked = values["labels"].sum(), values["weights"].sum()
    assert replaced <= masked
    if disallow:
        assert replaced == masked


def test_bfloat16_compute_keeps_float32_variables():
    """The TPU path: matmuls in bfloat16, variables (and so checkpoints) in float32."""
    _, variables, _ = build(compute_dtype=tf.bfloat16)
    assert "electra/encoder/layer_0/attention/self/query/kernel" in variables
    assert set(variables.values()) == {tf.float32}
