"""Warm start from a released-style TF checkpoint (no optimizer slots, no global_step): what is
loaded, the sizes read from it, the record, resuming without reloading, and one-line errors."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from configure_pretraining import PretrainingConfig
from pretrain import training, warm_start
from util.errors import UserInputError

from .conftest import ROOT, make_dataset
from .upstream_checkpoint import DISC, GEN, NEW_TOKENS, extend_vocab, upstream_shapes, write_bert_checkpoint, \
    write_json, write_released_checkpoint

RUN = dict(max_seq_length=64, train_batch_size=8, eval_batch_size=8, num_train_steps=2, iterations_per_loop=1,
           save_checkpoints_steps=100, keep_checkpoint_max=0, num_warmup_steps=1, seed=0)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    directory = tmp_path_factory.mktemp("released")
    tensors = write_released_checkpoint(str(directory / "model.ckpt-1000000"), upstream_shapes())
    return str(directory), tensors


@pytest.fixture(scope="module")
def warm_run(tmp_path_factory, tiny_data, released):
    """Two runs of the same command: the first warm-starts, the second resumes from its own checkpoint."""
    source, tensors = released
    saved_model = str(tmp_path_factory.mktemp("moved") / "released")
    shutil.copytree(source, saved_model)
    model_dir = str(tmp_path_factory.mktemp("warm") / "model")
    first = PretrainingConfig(model_dir, tiny_data, saved_model=saved_model, **RUN)
    training.train_or_eval(first)
    first_checkpoint = tf.train.load_checkpoint(os.path.join(model_dir, "model.ckpt-0"))
    with open(os.path.join(model_dir, "warm_start.json")) as f:
        record = json.load(f)
    # saved_model gone: the rerun must not need it, because it resumes from the model dir.
    shutil.rmtree(saved_model)
    second = PretrainingConfig(model_dir, tiny_data, saved_model=saved_model, **dict(RUN, num_train_steps=5))
    return dict(first=first, second=second, step0=first_checkpoint, record=record, tensors=tensors,
                model_dir=model_dir)


def test_every_variable_is_loaded_and_training_state_starts_at_zero(warm_run):
    step0, tensors = warm_run["step0"], warm_run["tensors"]
    stored = dict(tf.train.list_variables(warm_run["model_dir"]))
    model_variables = {n for n in stored if not n.endswith(("/adam_m", "/adam_v")) and n != "global_step"}
    assert model_variables == set(tensors)
    for name, value in tensors.items():
        np.testing.assert_array_equal(step0.get_tensor(name), value, err_msg=name)
        assert not step0.get_tensor(name + "/adam_m").any() and not step0.get_tensor(name + "/adam_v").any()
    assert step0.get_tensor("global_step") == 0


def test_sizes_come_from_the_checkpoint_not_the_preset(warm_run):
    config = warm_run["first"]
    bert, gen = config.to_dict()["bert_config"], config.to_dict()["generator_bert_config"]
    assert {k: bert[k] for k in DISC} == DISC  # heads: hidden_size // 64 = 1, nothing beside the checkpoint
    assert (gen["hidden_size"], gen["num_hidden_layers"], gen["intermediate_size"]) == (48, 1, 192)
    # 128 positions from the checkpoint, 64 tokens per example from the dataset
    assert (bert["max_position_embeddings"], config.max_seq_length) == (128, 64)


def test_record_says_what_was_loaded_and_what_starts_fresh(warm_run):
    record = warm_run["record"]
    assert set(record["loaded"]) == set(warm_run["tensors"]) and record["fresh"] == {}
    assert record["global_step"] == {"starts_at": 0, "checkpoint_had": None}
    assert record["optimizer_slots"].startswith("start at zero")
    query = "electra/encoder/layer_0/attention/self/query/kernel"
    assert record["sizes_from"]["hidden_size"] == f"64 (from {query} [64, 64])"
    assert "hidden_size // 64" in record["sizes_from"]["num_attention_heads"]


def test_rerun_resumes_from_the_model_dir_and_does_not_reload(warm_run, capsys):
    capsys.readouterr()
    training.train_or_eval(warm_run["second"])
    out = capsys.readouterr().out
    assert "resuming from" in out and "is not loaded again" in out and "warm start from" not in out
    steps = [int(line.split()[2].split("/")[0]) for line in out.splitlines() if line.startswith("train step")]
    assert steps == [4, 5]  # continued from step 2 (step 3, which builds the graph, is not logged)
    assert tf.train.load_variable(warm_run["model_dir"], "global_step") == 5
    with open(os.path.join(warm_run["model_dir"], "warm_start.json")) as f:
        assert json.load(f) == warm_run["record"]  # not rewritten by the resumed run


def test_checkpoint_without_generator_starts_it_fresh_and_says_why(tmp_path, tiny_data, capsys):
    write_released_checkpoint(str(tmp_path / "disc" / "model.ckpt-5"), upstream_shapes(gen=None))
    config = PretrainingConfig(str(tmp_path / "model"), tiny_data, saved_model=str(tmp_path / "disc"),
                               generator_hidden_size=0.5, **RUN)
    training.prepare(config)
    warm = config.warm_start
    assert warm.fresh and all(n.startswith(("generator/", "generator_predictions/")) for n in warm.fresh)
    assert "generator/encoder/layer_0/attention/self/query/kernel" in warm.fresh
    assert all("no generator" in why and "catch up" in why for why in warm.fresh.values())
    assert not any(n.startswith("generator") for n in warm.loaded)
    warm_start.report(warm, str(tmp_path / "model"), write=True)
    assert "hidden 32" in capsys.readouterr().out  # the configured size, 0.5 of 64
    with open(tmp_path / "model" / "warm_start.json") as f:
        assert set(json.load(f)["fresh"]) == set(warm.fresh)


@pytest.mark.parametrize("beside, expected", [
    ("pretrain_config.json", {"bert_config": {"num_attention_heads": 4}}),
    ("config.json", {"model_type": "electra", "num_attention_heads": 2}),
])
def test_heads_come_from_a_config_beside_the_checkpoint(tmp_path, tiny_data, released, beside, expected):
    source = str(tmp_path / "ckpt")
    shutil.copytree(released[0], source)
    write_json(os.path.join(source, beside), expected)
    config = PretrainingConfig(str(tmp_path / "model"), tiny_data, saved_model=source, **RUN)
    training.prepare(config)
    heads = expected.get("num_attention_heads") or expected["bert_config"]["num_attention_heads"]
    assert config.num_attention_heads == heads
    assert beside in config.warm_start.record["sizes_from"]["num_attention_heads"]


def test_mean_initialised_new_tokens_in_every_token_table(tmp_path, released):
    """vocab_extension.json beside the run's vocab: each new row is the mean of its base pieces' rows."""
    source = str(tmp_path / "released")
    tensors = write_released_checkpoint(source + "/model.ckpt-9", upstream_shapes(untied_embeddings=True), seed=3)
    data = make_dataset(str(tmp_path / "data"), num_examples=64)
    new = NEW_TOKENS
    extend_vocab(data, new)

    model_dir = str(tmp_path / "model")
    config = PretrainingConfig(model_dir, data, saved_model=source, **dict(RUN, num_train_steps=1))
    training.train_or_eval(config)
    assert config.untied_generator_embeddings  # read off generator/embeddings/word_embeddings
    step0 = tf.train.load_checkpoint(os.path.join(model_dir, "model.ckpt-0"))
    tables = ("electra/embeddings/word_embeddings", "generator/embeddings/word_embeddings",
              "generator_predictions/output_bias")
    for name in tables:
        got, was = step0.get_tensor(name), tensors[name]
        for i, (_, pieces) in new.items():
            np.testing.assert_allclose(got[i], was[pieces].mean(axis=0), rtol=1e-6, atol=1e-7, err_msg=name)
            assert not np.allclose(got[i], was[i])  # not the untrained unused-slot vector
        others = [i for i in range(len(was)) if i not in new]
        np.testing.assert_array_equal(got[others], was[others], err_msg=name)
    with open(os.path.join(model_dir, "warm_start.json")) as f:
        recorded = json.load(f)["vocab_extension"]
    assert recorded["new_tokens"] == 2 and recorded["tables"] == list(tables)


def _prepare_fails(tmp_path, data, match, **hparams):
    config = PretrainingConfig(str(tmp_path / "model"), data, **dict(RUN, **hparams))
    with pytest.raises(UserInputError, match=match) as info:
        training.prepare(config)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_path_that_does_not_exist(tmp_path, tiny_data):
    _prepare_fails(tmp_path, tiny_data, f"saved_model {tmp_path}/nowhere does not exist",
                   saved_model=str(tmp_path / "nowhere"))


def test_bert_checkpoint_is_named(tmp_path, tiny_data):
    write_bert_checkpoint(str(tmp_path / "bert" / "bert_model.ckpt"))
    message = _prepare_fails(tmp_path, tiny_data, "a BERT checkpoint", saved_model=str(tmp_path / "bert"))
    assert "bert/embeddings/word_embeddings, cls/predictions/output_bias" in message


@pytest.mark.parametrize("rows, match", [(120, "more than the 120 rows.*build_vocab.py --extend"),
                                         (140, "fewer than the 140 rows")])
def test_vocab_of_another_size_than_the_checkpoint(tmp_path, tiny_data, rows, match):
    disc = dict(DISC, vocab_size=rows)
    write_released_checkpoint(str(tmp_path / "c" / "model.ckpt-1"), upstream_shapes(disc, dict(GEN, vocab_size=rows)))
    message = _prepare_fails(tmp_path, tiny_data, match, saved_model=str(tmp_path / "c"))
    assert message.startswith(os.path.join(tiny_data, "vocab.txt") + ": 130 tokens")


def test_user_setting_contradicting_the_checkpoint_names_variable_and_shapes(tmp_path, tiny_data, released):
    _prepare_fails(tmp_path, tiny_data, r"hidden_size 32 contradicts .*: variable "
                   r"electra/encoder/layer_0/attention/self/query/kernel has shape \[64, 64\] there, "
                   r"hidden_size 32 needs \[32, 32\]", saved_model=released[0], hidden_size=32)
    _prepare_fails(tmp_path, tiny_data, r"max_position_embeddings 512 contradicts .*position_embeddings has shape "
                   r"\[128, 32\] there, max_position_embeddings 512 needs \[512, 32\]", saved_model=released[0],
                   model_hparam_overrides={"max_position_embeddings": 512})
    _prepare_fails(tmp_path, tiny_data, r"generator_hidden_size 0.25 \(generator hidden size 16\) contradicts .*"
                   r"has shape \[48, 48\] there, the config needs \[16, 16\]", saved_model=released[0],
                   generator_hidden_size=0.25)
    _prepare_fails(tmp_path, tiny_data, "num_hidden_layers 12 contradicts .*: it has 2 layers",
                   saved_model=released[0], num_hidden_layers=12)


def test_a_shape_the_config_cannot_express_is_named(tmp_path, tiny_data):
    """Our generator's feed-forward is 4 x its width; a checkpoint with another is refused, not half-loaded."""
    shapes = upstream_shapes(gen=dict(GEN, intermediate_size=100))
    write_released_checkpoint(str(tmp_path / "c" / "model.ckpt-1"), shapes)
    _prepare_fails(tmp_path, tiny_data, r"variable generator/encoder/layer_0/intermediate/dense/kernel has shape "
                   r"\[48, 100\] in the checkpoint, the model needs \[48, 192\]", saved_model=str(tmp_path / "c"))


def test_transformers_pair_is_converted_once_and_loaded(tmp_path, tiny_data, capsys):
    """A discriminator and generator that transformers itself made and saved, as on the Hub."""
    import torch
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
    training.train_or_eval(config)
    out = capsys.readouterr().out
    assert "converting the transformers directories" in out
    step0 = tf.train.load_checkpoint(os.path.join(model_dir, "model.ckpt-0"))
    disc = ElectraForPreTraining.from_pretrained(disc_dir)
    gen = ElectraForMaskedLM.from_pretrained(gen_dir)
    np.testing.assert_array_equal(step0.get_tensor("electra/embeddings/word_embeddings"),
                                  disc.electra.embeddings.word_embeddings.weight.detach().numpy())
    np.testing.assert_array_equal(step0.get_tensor("generator/encoder/layer_0/output/dense/kernel"),
                                  gen.electra.encoder.layer[0].output.dense.weight.detach().numpy().T)
    assert config.to_dict()["bert_config"]["num_attention_heads"] == 2  # from the converted config, not 64 // 64
    with open(os.path.join(model_dir, "warm_start.json")) as f:
        record = json.load(f)
    assert record["fresh"] == {} and warm_start.CONVERTED_DIR in record["checkpoint"]
    # The same command again resumes from the model dir: no second conversion.
    training.train_or_eval(PretrainingConfig(model_dir, tiny_data, saved_model=disc_dir, saved_generator=gen_dir,
                                             **dict(RUN, num_train_steps=3)))
    assert "converting" not in capsys.readouterr().out


def test_transformers_directory_of_another_model_and_misplaced_saved_generator(tmp_path, tiny_data, released):
    hub = tmp_path / "hub"
    hub.mkdir()
    write_json(str(hub / "config.json"), {"model_type": "bert", "architectures": ["BertModel"]})
    _prepare_fails(tmp_path, tiny_data, "is not ELECTRA", saved_model=str(hub))
    _prepare_fails(tmp_path, tiny_data, "holds its own", saved_model=released[0], saved_generator=str(hub))


def test_vocab_extension_that_does_not_match_the_vocab_is_refused(tmp_path, released):
    data = make_dataset(str(tmp_path / "data"), num_examples=16)
    entry = {"id": 6, "token": "new", "replaced": "[unused1]", "base_pieces": [13]}
    write_json(os.path.join(data, "vocab_extension.json"),
               {"base_vocab_sha256": "", "base_vocab_size": 130, "tokenizer_type": "wordpiece", "new_tokens": [entry]})
    _prepare_fails(tmp_path, data, r"new_tokens\[0\]: id 6 is '\[unused1\]' in .*vocab.txt, not 'new'",
                   saved_model=released[0])


def test_command_line_error_is_one_line(tmp_path, tiny_data):
    result = subprocess.run([sys.executable, "run_pretraining.py", "--data_dir", tiny_data, "--model_name",
                             str(tmp_path / "m"), "--hparams", json.dumps({"saved_model": str(tmp_path / "gone")})],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"error: saved_model {tmp_path}/gone does not exist"
    assert not os.path.exists(tmp_path / "m" / "warm_start.json")
