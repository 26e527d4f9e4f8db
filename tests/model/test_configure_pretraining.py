"""The config object: presets, overrides, derived sizes and one-line errors for bad input."""
import json
import os
import subprocess
import sys

import pytest

from configure_pretraining import PretrainingConfig, load_hparams
from model.electra_model import generator_config
from util.errors import UserInputError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PUBLISHED = os.path.join(ROOT, "conf", "pretrain", "small_config_kor_wordpiece_train.json")


def test_defaults_follow_upstream():
    config = PretrainingConfig("m", "/data")
    assert (config.gen_weight, config.disc_weight, config.mask_prob, config.learning_rate) == (1.0, 50.0, 0.15, 5e-4)
    assert (config.num_warmup_steps, config.num_train_steps, config.generator_hidden_size) == (10000, 1000000, 0.25)
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (256, 12, 4)
    assert (config.intermediate_size, config.embedding_size) == (1024, 128)
    assert config.max_predictions_per_seq == int((0.15 + 0.005) * 128) == 19
    assert config.model_dir == os.path.join("/data", "models", "m")


def test_published_small_config_resolves_to_dialog_koelectra_small():
    hparams, source = load_hparams(PUBLISHED)
    config = PretrainingConfig("data/ckpt/pretrain_ckpt", "data/tfrecord", source=source, **hparams)
    config.validate()
    bert = config.bert_config().to_dict()
    assert bert == dict(bert, vocab_size=40000, hidden_size=256, num_hidden_layers=12, num_attention_heads=4,
                        intermediate_size=1024, embedding_size=128, max_position_embeddings=128)
    gen = generator_config(config)
    assert (gen.hidden_size, gen.num_hidden_layers, gen.num_attention_heads, gen.intermediate_size) == (256, 12, 4, 1024)
    assert (config.train_batch_size, config.learning_rate, config.num_train_steps) == (512, 1e-4, 700000)
    # A model_name with a path separator is the model dir itself, as in the seed's example.
    assert config.model_dir == "data/ckpt/pretrain_ckpt"


def test_base_and_large_presets():
    base = PretrainingConfig("m", "d", model_size="base")
    assert (base.hidden_size, base.embedding_size, base.max_seq_length, base.train_batch_size) == (768, 768, 512, 256)
    assert generator_config(base).hidden_size == 256
    large = PretrainingConfig("m", "d", model_size="large")
    assert (large.hidden_size, large.num_hidden_layers, large.mask_prob, large.train_batch_size) == (1024, 24, 0.25, 2048)


def test_user_overrides_win_over_presets_and_model_hparam_overrides_win_over_both():
    config = PretrainingConfig("m", "d", model_size="base", learning_rate=3e-4, hidden_size=512,
                               model_hparam_overrides={"num_attention_heads": 8})
    assert (config.learning_rate, config.hidden_size, config.num_attention_heads) == (3e-4, 512, 8)
    assert config.bert_config().num_attention_heads == 8


def test_unknown_key_names_the_closest_known_one():
    with pytest.raises(UserInputError, match=r"unknown hparam 'lerning_rate' \(did you mean 'learning_rate'\?\)"):
        PretrainingConfig("m", "d", lerning_rate=1e-4)
    with pytest.raises(UserInputError, match="max_position_embedings.*did you mean 'max_position_embeddings'"):
        PretrainingConfig("m", "d", model_hparam_overrides={"max_position_embedings": 64})


def test_malformed_json_inline_and_in_a_file(tmp_path):
    with pytest.raises(UserInputError, match="--hparams: malformed JSON"):
        load_hparams('{"learning_rate": 1e-4,}')
    path = tmp_path / "bad.json"
    path.write_text('{\n  "learning_rate": 1e-4\n  "mask_prob": 0.2\n}\n')
    with pytest.raises(UserInputError, match=rf"{path}:3: malformed JSON"):
        load_hparams(str(path))
    with pytest.raises(UserInputError, match="must be a JSON object"):
        load_hparams("[1, 2]")


@pytest.mark.parametrize("overrides, message", [
    (dict(hidden_size=250), "hidden size 250 is not divisible by its 4 attention heads"),
    (dict(hidden_size=256, generator_hidden_size=0.78125), "generator hidden size 200 is not divisible by its 3"),
    (dict(train_batch_size=0), "train_batch_size must be a positive integer"),
    (dict(mask_prob=1.5), "mask_prob must be between 0 and 1"),
    (dict(max_seq_length=1024), "max_seq_length 1024 exceeds max_position_embeddings 512"),
    (dict(learning_rate="fast"), "learning_rate must be float"),
    (dict(model_size="huge"), "model_size 'huge' is not one of small, base, large"),
    (dict(do_train=False), "nothing to do"),
])
def test_impossible_settings_are_one_clear_line(overrides, message):
    with pytest.raises(UserInputError, match=message) as error:
        PretrainingConfig("m", "d", **overrides).validate()
    assert "\n" not in str(error.value)


def test_pretrain_config_dict_has_both_encoders():
    config = PretrainingConfig("m", "d", vocab_size=500)
    values = config.to_dict()
    keys = {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
            "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size",
            "initializer_range", "embedding_size"}
    assert set(values["bert_config"]) == keys == set(values["generator_bert_config"])
    assert values["generator_bert_config"]["hidden_size"] == 64
    json.dumps(values)


def test_cli_prints_one_line_and_exits_1(tmp_path):
    result = subprocess.run(
        [sys.executable, "run_pretraining.py", "--data_dir", str(tmp_path), "--model_name", "m",
         "--hparams", '{"num_train_step": 10}'], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --hparams: unknown hparam 'num_train_step' (did you mean 'num_train_steps'?)")


def test_repeated_hparams_layer_overrides_on_a_file(tmp_path):
    from configure_pretraining import merge_hparams

    base = tmp_path / "base.json"
    base.write_text('{"learning_rate": 1e-4, "num_train_steps": 700000, '
                    '"model_hparam_overrides": {"max_position_embeddings": 128, "hidden_dropout_prob": 0.1}}')
    merged, source = merge_hparams([str(base), '{"num_train_steps": 300, '
                                                '"model_hparam_overrides": {"hidden_dropout_prob": 0.0}}'])
    assert merged["learning_rate"] == 1e-4 and merged["num_train_steps"] == 300
    assert merged["model_hparam_overrides"] == {"max_position_embeddings": 128, "hidden_dropout_prob": 0.0}
    assert source == f"{base} + --hparams"
    assert merge_hparams([]) == ({}, "--hparams")


def test_user_set_keys_are_told_apart_from_presets_and_debug():
    """A warm start reads every size the user did not set from the checkpoint (pretrain/warm_start.py)."""
    config = PretrainingConfig("m", "d", debug=True, hidden_size=128, saved_model="ckpt", saved_generator=None,
                               model_hparam_overrides={"max_position_embeddings": 256})
    assert {"hidden_size", "max_position_embeddings", "saved_model"} <= config.user_set
    assert not {"num_hidden_layers", "intermediate_size", "embedding_size"} & config.user_set  # debug and derived
    assert config.saved_generator is None and config.warm_start is None
    assert "saved_generator" not in PretrainingConfig("m", "d").user_set
