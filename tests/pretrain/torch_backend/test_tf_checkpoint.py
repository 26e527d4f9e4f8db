"""pretrain/torch_backend/tf_checkpoint.py: the torch model's weights and Adam slots under TF names, both ways."""
import numpy as np
import pytest
import torch

from pretrain.torch_backend.model import ElectraPretrainer
from pretrain.torch_backend.optim import build_optimizer, clip_by_global_norm
from pretrain.torch_backend.tf_checkpoint import load_tf_checkpoint_into, tf_checkpoint_arrays
from util.errors import UserInputError

from .tiny_config import SIZES, make_config


def make_model(vocab_dir, seed):
    config = make_config(vocab_dir, dict(SIZES, num_hidden_layers=1, num_attention_heads=1, intermediate_size=128,
                                         max_position_embeddings=16), seq=16)
    torch.manual_seed(seed)
    return ElectraPretrainer(config)


def one_step(model):
    optimizer = build_optimizer(model, model.config)
    ids = torch.tensor([[2, 100, 200, 300, 400, 500, 3, 0] + [0] * 8])
    mask = (ids != 0).long()
    model(ids, mask, torch.zeros_like(ids), generator=torch.Generator().manual_seed(0))["total_loss"].backward()
    clip_by_global_norm(model.parameters())
    optimizer.step()
    return optimizer


def test_arrays_round_trip_with_the_adam_slots(sample_vocab_dir):
    model = make_model(sample_vocab_dir, 0)
    optimizer = one_step(model)
    arrays = tf_checkpoint_arrays(model, optimizer)
    assert arrays["electra/encoder/layer_0/attention/self/query/kernel"].shape == (64, 64)
    assert arrays["generator/embeddings_project/kernel"].shape == (32, 16)  # TF's [in, out]
    assert {n[:-len("/adam_m")] for n in arrays if n.endswith("/adam_m")} == {n for n in arrays if "/adam_" not in n}
    np.testing.assert_array_equal(arrays["generator/embeddings_project/kernel"],
                                  model.generator.electra.embeddings_project.weight.detach().numpy().T)

    other = make_model(sample_vocab_dir, 1)
    other_optimizer = build_optimizer(other, other.config)
    assert not np.array_equal(tf_checkpoint_arrays(other)["electra/embeddings/word_embeddings"],
                              arrays["electra/embeddings/word_embeddings"])
    load_tf_checkpoint_into(other, arrays, other_optimizer)
    back = tf_checkpoint_arrays(other, other_optimizer)
    assert back.keys() == arrays.keys() and all(np.array_equal(back[k], arrays[k]) for k in arrays)


def test_a_checkpoint_that_does_not_fit_is_one_line_naming_the_variable(sample_vocab_dir):
    model = make_model(sample_vocab_dir, 0)
    arrays = tf_checkpoint_arrays(model)
    missing = {k: v for k, v in arrays.items() if k != "generator_predictions/output_bias"}
    with pytest.raises(UserInputError, match="missing generator_predictions/output_bias"):
        load_tf_checkpoint_into(model, missing, source="ckpt")
    extra = dict(arrays, **{"electra/encoder/layer_1/output/dense/bias": np.zeros(64, np.float32),
                            "global_step": np.int64(3)})
    with pytest.raises(UserInputError, match="not in this model electra/encoder/layer_1/output/dense/bias"):
        load_tf_checkpoint_into(model, extra, source="ckpt")
    wrong = dict(arrays, **{"electra/embeddings_project/kernel": np.zeros((64, 32), np.float32)})
    with pytest.raises(UserInputError, match=r"electra/embeddings_project/kernel has shape \[64, 32\], the model "
                                             r"expects \[32, 64\]"):
        load_tf_checkpoint_into(model, wrong, source="ckpt")


def test_a_tf_checkpoint_written_by_tf_loads_through_checkpoint_variables(sample_vocab_dir, tmp_path):
    import tensorflow.compat.v1 as tf

    from model.checkpoint_reader import CheckpointVariables

    model = make_model(sample_vocab_dir, 0)
    optimizer = one_step(model)
    arrays = dict(tf_checkpoint_arrays(model, optimizer), global_step=np.int64(1))
    with tf.Graph().as_default(), tf.Session() as sess:
        variables = [tf.Variable(value, name=name) for name, value in arrays.items()]
        sess.run(tf.global_variables_initializer())
        prefix = tf.train.Saver(variables).save(sess, str(tmp_path / "model.ckpt"), write_meta_graph=False)
    fresh = make_model(sample_vocab_dir, 2)
    fresh_optimizer = build_optimizer(fresh, fresh.config)
    load_tf_checkpoint_into(fresh, CheckpointVariables(prefix), fresh_optimizer)
    back = tf_checkpoint_arrays(fresh, fresh_optimizer)
    assert all(np.array_equal(back[k], arrays[k]) for k in back) and len(back) == len(arrays) - 1
