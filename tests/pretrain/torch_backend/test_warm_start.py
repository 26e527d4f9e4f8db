"""The torch backend warm-starts from the TF backend's sources with the same plan: a released-style
TF checkpoint, a transformers pair (read directly, no conversion), vocab_extension.json's mean rows."""
import json
import os

import numpy as np
import pytest
import torch

from configure_pretraining import PretrainingConfig
from pretrain import warm_start
from pretrain.prepare import prepare
from pretrain.torch_backend import train
from pretrain.torch_backend.model import ElectraPretrainer
from pretrain.torch_backend.tf_checkpoint import tf_checkpoint_arrays
from pretrain.torch_backend.warm_start import load_into
from util.errors import UserInputError

from ..conftest import make_dataset
from ..upstream_checkpoint import DISC, NEW_TOKENS, extend_vocab, upstream_shapes, write_released_checkpoint

RUN = dict(max_seq_length=64, train_batch_size=8, eval_batch_size=8, num_train_steps=2, iterations_per_loop=1,
           save_checkpoints_steps=100, keep_checkpoint_max=0, num_warmup_steps=1, seed=0)


def warm_model(config):
    """The torch model as the run builds it from the plan prepare() made."""
    prepare(config, backend="torch")
    torch.manual_seed(0)
    model = ElectraPretrainer(config)
    load_into(model, config.warm_start)
    return tf_checkpoint_arrays(model)


def test_a_released_tf_checkpoint_loads_every_variable_and_a_rerun_resumes(tmp_path, tiny_data, capsys):
    pytest.importorskip("tensorflow")
    source = str(tmp_path / "released")
    tensors = write_released_checkpoint(source + "/model.ckpt-1000000", upstream_shapes())
    config = PretrainingConfig(str(tmp_path / "model"), tiny_data, saved_model=source, **RUN)
    arrays = warm_model(config)
    assert config.warm_start.fresh == {} and sorted(config.warm_start.loaded) == sorted(tensors)
    for name, value in tensors.items():
        np.testing.assert_array_equal(arrays[name], value, err_msg=name)
    assert config.hidden_size == DISC["hidden_size"]  # read off the checkpoint, not the preset

    model_dir = str(tmp_path / "run")
    train.main(PretrainingConfig(model_dir, tiny_data, saved_model=source, **RUN))
    with open(os.path.join(model_dir, "warm_start.json")) as f:
        assert json.load(f)["loaded"] == config.warm_start.loaded
    capsys.readouterr()
    train.main(PretrainingConfig(model_dir, tiny_data, saved_model=source, **dict(RUN, num_train_steps=3)))
    out = capsys.readouterr().out
    assert "is not loaded again" in out and "at step 2 of 3" in out


def test_new_tokens_start_as_the_mean_of_their_base_pieces(tmp_path):
    pytest.importorskip("tensorflow")
    source = str(tmp_path / "released")
    tensors = write_released_checkpoint(source + "/model.ckpt-9", upstream_shapes(untied_embeddings=True), seed=3)
    data = make_dataset(str(tmp_path / "data"), num_examples=64)
    extend_vocab(data, NEW_TOKENS)
    config = PretrainingConfig(str(tmp_path / "model"), data, saved_model=source, **RUN)
    arrays = warm_model(config)
    tables = ("electra/embeddings/word_embeddings", "generator/embeddings/word_embeddings",
              "generator_predictions/output_bias")
    for name in tables:
        got, was = arrays[name], tensors[name]
        for i, (_, pieces) in NEW_TOKENS.items():
            np.testing.assert_allclose(got[i], was[pieces].mean(axis=0), rtol=1e-6, atol=1e-7, err_msg=name)
        others = [i for i in range(len(was)) if i not in NEW_TOKENS]
        np.testing.assert_array_equal(got[others], was[others], err_msg=name)
    assert config.warm_start.record["vocab_extension"]["tables"] == list(tables)


def test_a_transformers_pair_is_read_without_converting_it(tmp_path, tiny_data, capsys):
    from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining

    torch.manual_seed(0)
    sizes = dict(vocab_size=DISC["vocab_size"], embedding_size=32, max_position_embeddings=128)
    disc_dir, gen_dir = str(tmp_path / "hub" / "disc"), str(tmp_path / "hub" / "gen")
    ElectraForPreTraining(ElectraConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                        intermediate_size=256, **sizes)).save_pretrained(disc_dir)
    ElectraForMaskedLM(ElectraConfig(hidden_size=48, num_hidden_layers=1, num_attention_heads=1,
                                     intermediate_size=192, **sizes)).save_pretrained(gen_dir)
    model_dir = str(tmp_path / "model")
    config = PretrainingConfig(model_dir, tiny_data, saved_model=disc_dir, saved_generator=gen_dir, **RUN)
    arrays = warm_model(config)
    assert "converting" not in capsys.readouterr().out and not os.path.exists(model_dir)
    disc, gen = ElectraForPreTraining.from_pretrained(disc_dir), ElectraForMaskedLM.from_pretrained(gen_dir)
    np.testing.assert_array_equal(arrays["electra/embeddings/word_embeddings"],
                                  disc.electra.embeddings.word_embeddings.weight.detach().numpy())
    np.testing.assert_array_equal(arrays["generator/encoder/layer_0/output/dense/kernel"],
                                  gen.electra.encoder.layer[0].output.dense.weight.detach().numpy().T)
    assert config.warm_start.fresh == {}
    assert config.to_dict()["bert_config"]["num_attention_heads"] == 2  # from config.json beside the weights


def test_a_tf_checkpoint_without_tensorflow_names_the_conversion(tmp_path, tiny_data, monkeypatch):
    pytest.importorskip("tensorflow")
    source = str(tmp_path / "released")
    write_released_checkpoint(source + "/model.ckpt-1", upstream_shapes())
    monkeypatch.setattr(warm_start, "tensorflow_installed", lambda: False)
    config = PretrainingConfig(str(tmp_path / "model"), tiny_data, saved_model=source, **RUN)
    with pytest.raises(UserInputError, match=r"is a TF-v1 checkpoint, which only TensorFlow reads.*pytorch_convert\.py"
                                             r".*saved_model \(D\) and saved_generator \(G\)$") as error:
        prepare(config, backend="torch")
    assert "\n" not in str(error.value)
