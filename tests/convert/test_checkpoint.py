"""Finding checkpoints, skipping training state, and refusing checkpoints that do not fit."""
import json
import os

import numpy as np
import pytest

from tiny_checkpoint import bert_config, make_model_dir, save_checkpoint, variable_shapes

from convert import checkpoint
from convert.pipeline import convert_checkpoint
from util.errors import UserInputError

VOCAB = 120
DISC, GEN = bert_config(32, 2, 2, 16, VOCAB), bert_config(16, 2, 1, 16, VOCAB)


def _convert_fails(tmp_path, model_dir, match):
    out = tmp_path / "out"
    with pytest.raises(UserInputError, match=match) as info:
        convert_checkpoint(model_dir, str(out / "disc"), str(out / "gen"), str(out / "disc.onnx"),
                           log=lambda _: None)
    # Nothing written: not the outputs, not their temporary siblings.
    assert not out.exists() or os.listdir(out) == []
    return str(info.value)


def test_missing_variable_names_it_and_its_shape(tmp_path):
    name = "electra/encoder/layer_1/output/dense/bias"
    model_dir = make_model_dir(str(tmp_path / "model"), DISC, GEN, drop=[name])
    message = _convert_fails(tmp_path, model_dir, "missing")
    assert f"variable {name} is missing (expected shape [32])" in message


def test_extra_variable_names_it_and_its_shape(tmp_path):
    model_dir = make_model_dir(str(tmp_path / "model"), DISC, GEN,
                               add={"electra/encoder/layer_2/output/dense/bias": [32]})
    message = _convert_fails(tmp_path, model_dir, "unexpected")
    assert "unexpected variable electra/encoder/layer_2/output/dense/bias with shape [32]" in message


def test_shape_mismatch_names_both_shapes(tmp_path):
    name = "generator/encoder/layer_0/intermediate/dense/kernel"
    model_dir = make_model_dir(str(tmp_path / "model"), DISC, GEN, reshape={name: [16, 48]})
    message = _convert_fails(tmp_path, model_dir, "shape")
    assert f"variable {name} has shape [16, 48] in the checkpoint, expected [16, 64]" in message


def test_config_disagreeing_with_checkpoint_is_a_shape_mismatch(tmp_path):
    """The most common user failure: the generator converted with the discriminator's sizes."""
    model_dir = make_model_dir(str(tmp_path / "model"), DISC, GEN)
    path = os.path.join(model_dir, "pretrain_config.json")
    config = json.load(open(path))
    config["generator_bert_config"] = DISC
    json.dump(config, open(path, "w"))
    message = _convert_fails(tmp_path, model_dir, "expected")
    assert "generator/embeddings_project/kernel is missing (expected shape [16, 32])" in message
    assert "generator/encoder/layer_0/attention/self/query/kernel has shape [16, 16] in the checkpoint, " \
           "expected [32, 32]" in message


def test_optimizer_slots_and_loss_scale_are_skipped(tmp_path):
    prefix = str(tmp_path / "model" / "model.ckpt-3")
    shapes = variable_shapes(DISC, GEN)
    extra = {"loss_scale/scale": np.float32(1024.0), "loss_scale/good_steps": np.int64(5),
             "electra/embeddings/word_embeddings/Adam": np.zeros([VOCAB, 16], np.float32)}
    save_checkpoint(prefix, shapes, overrides=extra)  # also writes adam_m/adam_v, global_step
    variables = checkpoint.CheckpointVariables(prefix)
    assert set(variables.shapes) == set(shapes)
    assert variables.global_step == 7


def test_resolve_directory_picks_newest_checkpoint_even_if_state_file_is_foreign(tmp_path):
    shapes = variable_shapes(DISC, GEN)
    for step in (5, 20):
        save_checkpoint(str(tmp_path / f"model.ckpt-{step}"), shapes)
    assert checkpoint.resolve_checkpoint(str(tmp_path))[0] == str(tmp_path / "model.ckpt-20")
    # A model directory copied from another machine: its `checkpoint` file names absolute paths there.
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "/elsewhere/model.ckpt-20"\n')
    assert checkpoint.resolve_checkpoint(str(tmp_path))[0] == str(tmp_path / "model.ckpt-20")
    prefix, model_dir = checkpoint.resolve_checkpoint(str(tmp_path / "model.ckpt-5.index"))
    assert (prefix, model_dir) == (str(tmp_path / "model.ckpt-5"), str(tmp_path))


def test_resolve_errors_name_the_path(tmp_path):
    with pytest.raises(UserInputError, match="no TF checkpoint"):
        checkpoint.resolve_checkpoint(str(tmp_path))
    with pytest.raises(UserInputError, match="model.ckpt-9.index not found"):
        checkpoint.resolve_checkpoint(str(tmp_path / "model.ckpt-9"))


def test_config_missing_a_size_names_the_key(tmp_path):
    model_dir = make_model_dir(str(tmp_path / "model"), DISC, GEN)
    path = os.path.join(model_dir, "pretrain_config.json")
    config = json.load(open(path))
    del config["generator_bert_config"]["hidden_size"]
    json.dump(config, open(path, "w"))
    _convert_fails(tmp_path, model_dir, r"generator_bert_config: missing key 'hidden_size'")


def test_vocab_of_the_wrong_size_is_refused(tmp_path):
    model_dir = make_model_dir(str(tmp_path / "model"), DISC, GEN)
    vocab = os.path.join(model_dir, "vocab.txt")
    lines = open(vocab, encoding="utf-8").read().splitlines()[:-1]
    open(vocab, "w", encoding="utf-8").write("\n".join(lines) + "\n")
    _convert_fails(tmp_path, model_dir, f"{VOCAB - 1} lines, but the checkpoint's word embeddings have {VOCAB}")


def test_generator_requested_from_a_discriminator_only_checkpoint(tmp_path):
    model_dir = make_model_dir(str(tmp_path / "model"), DISC, None, with_config=False)
    _convert_fails(tmp_path, model_dir, "holds no generator")


def test_uniform_generator_config_converts_the_discriminator_alone(tmp_path):
    """uniform_generator=True trains no generator network, whatever generator_bert_config says."""
    model_dir = make_model_dir(str(tmp_path / "model"), DISC, None)
    path = os.path.join(model_dir, "pretrain_config.json")
    config = json.load(open(path))
    config.update(uniform_generator=True, generator_bert_config=GEN)
    json.dump(config, open(path, "w"))
    results = convert_checkpoint(model_dir, str(tmp_path / "disc"), log=lambda _: None)
    assert [r.name for r in results] == ["discriminator: PyTorch vs TF"] and results[0].ok
    saved = json.load(open(tmp_path / "disc" / "config.json"))
    assert saved["pad_token_id"] == 0 and saved["architectures"] == ["ElectraForPreTraining"]


def test_checkpoint_data_cut_short_names_the_checkpoint(tmp_path):
    """An interrupted copy of the model dir: the index is whole, the data file is not."""
    model_dir = make_model_dir(str(tmp_path / "model"), DISC, GEN)
    data = os.path.join(model_dir, "model.ckpt-7.data-00000-of-00001")
    with open(data, "r+b") as f:
        f.truncate(os.path.getsize(data) // 2)
    # Found before TensorFlow reads it (pretrain/checkpoint_state.py): the file, what is wrong, the fix.
    message = _convert_fails(tmp_path, model_dir, r"damaged checkpoint \(cut short: ")
    assert "\n" not in message and message.startswith(data + ": ")
    assert message.endswith("copy the checkpoint files again")
