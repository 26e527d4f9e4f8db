"""What pretraining says when a warm start or a resume goes wrong, and that its advice works as written,
for both backends (pretrain/prepare.py and pretrain/warm_start.py serve both)."""
import json
import os
import re

import numpy as np
import pytest

from configure_pretraining import PretrainingConfig
from pretrain.prepare import prepare
from util.errors import UserInputError

RUN = dict(max_seq_length=64, train_batch_size=8, eval_batch_size=8, num_train_steps=2, iterations_per_loop=1,
           save_checkpoints_steps=100, keep_checkpoint_max=0, num_warmup_steps=1, seed=0)
BACKENDS = ["torch", pytest.param("tf", marks=pytest.mark.skipif(
    __import__("importlib").util.find_spec("tensorflow") is None, reason="TensorFlow not installed"))]


@pytest.fixture(scope="module")
def hub_pair(tmp_path_factory, tiny_data):
    """A pair as the Hub has them (KoELECTRA-Small-v3's layout, smaller): the generator narrower than the
    discriminator, its word embeddings trained apart from the discriminator's (not tied)."""
    import torch
    from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining

    from .upstream_checkpoint import DISC

    directory = tmp_path_factory.mktemp("hub")
    sizes = dict(vocab_size=DISC["vocab_size"], embedding_size=32, max_position_embeddings=128)
    torch.manual_seed(0)
    ElectraForPreTraining(ElectraConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                        intermediate_size=256, **sizes)).save_pretrained(directory / "disc")
    ElectraForMaskedLM(ElectraConfig(hidden_size=48, num_hidden_layers=1, num_attention_heads=1,
                                     intermediate_size=192, **sizes)).save_pretrained(directory / "gen")
    return str(directory / "disc"), str(directory / "gen")


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_untied_embeddings_advice_works_as_written(hub_pair, tiny_data, tmp_path, backend, capsys):
    from transformers import ElectraForMaskedLM

    config = PretrainingConfig(str(tmp_path / "model"), tiny_data, saved_model=hub_pair[0],
                               saved_generator=hub_pair[1], **RUN)
    prepare(config, backend=backend)
    out = capsys.readouterr().out
    advice = re.findall(r"--hparams '(\{[^']*\})'", out)
    assert advice and "--untied_generator_embeddings" not in out, out
    assert json.loads(advice[0]) == {"untied_generator_embeddings": True}

    # The same command with the advice layered on (the TF backend converts the pair again, untied).
    config = PretrainingConfig(str(tmp_path / "model"), tiny_data, saved_model=hub_pair[0],
                               saved_generator=hub_pair[1], **dict(RUN, **json.loads(advice[0])))
    prepare(config, backend=backend)
    warm = config.warm_start
    assert warm.fresh == {} and "generator/embeddings/word_embeddings" in warm.loaded
    hub = ElectraForMaskedLM.from_pretrained(hub_pair[1]).electra.embeddings.word_embeddings.weight.detach().numpy()
    np.testing.assert_array_equal(warm.variables.get("generator/embeddings/word_embeddings"), hub)
    # The generator keeps the Hub's embedding width (32) under its own hidden size (48).
    assert config.to_dict()["generator_bert_config"]["embedding_size"] == 32
    sizes = warm.record["sizes_from"]
    assert sizes["generator_hidden_size"].startswith("0.75× the discriminator's hidden_size (from ")
    assert sizes["generator_layers"].startswith("0.5× the discriminator's num_hidden_layers (from ")
    assert sizes["generator_embedding_size"].startswith("32 (from generator/embeddings/word_embeddings [130, 32])")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_swapped_pair_names_the_hparams(hub_pair, tiny_data, tmp_path, backend):
    config = PretrainingConfig(str(tmp_path / "model"), tiny_data, saved_model=hub_pair[1],
                               saved_generator=hub_pair[0], **RUN)
    with pytest.raises(UserInputError) as error:
        prepare(config, backend=backend)
    message = str(error.value)
    assert "--pt_" not in message and "give it as saved_generator" in message, message


def test_a_resume_with_other_sizes_names_only_the_keys_that_differ(tiny_data, tmp_path):
    from pretrain.torch_backend import train

    from .conftest import tiny_hparams

    model_dir = str(tmp_path / "model")
    hparams = tiny_hparams(**dict(RUN, num_train_steps=1, save_checkpoints_steps=1))
    train.main(PretrainingConfig(model_dir, tiny_data, **hparams))
    config = PretrainingConfig(model_dir, tiny_data, **dict(hparams, num_train_steps=2, intermediate_size=128))
    with pytest.raises(UserInputError) as error:
        prepare(config, backend="torch")
    message = str(error.value)
    assert "bert_config.intermediate_size 256 there, 128 now" in message, message
    assert "hidden_size" not in message and "{" not in message, message  # not the two whole dicts
