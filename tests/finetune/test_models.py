"""Any local transformers encoder fine-tunes: BERT, ALBERT, Funnel and DistilBERT directories too."""
import json
import logging
import os
import shutil

import pytest
import torch

from finetune.config import load_config
from finetune.models import encoder_layers, reinit_top_layer
from finetune.tasks import get_task
from finetune.trainer import run
from util.errors import UserInputError

from finetune_helpers import make_tiny_electra, tiny_run_config


def tiny_config(kind, vocab_size):
    from transformers import AlbertConfig, BertConfig, DistilBertConfig, FunnelConfig

    if kind == "bert":
        return BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=64, max_position_embeddings=128)
    if kind == "albert":
        return AlbertConfig(vocab_size=vocab_size, embedding_size=16, hidden_size=32, num_hidden_layers=2,
                            num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    if kind == "funnel":
        return FunnelConfig(vocab_size=vocab_size, block_sizes=[1, 1], d_model=32, n_head=2, d_head=16,
                            d_inner=64, max_position_embeddings=128)
    return DistilBertConfig(vocab_size=vocab_size, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                            max_position_embeddings=128)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Funnel's own indexing deprecation warnings
@pytest.mark.parametrize("kind", ["bert", "albert", "funnel", "distilbert"])
def test_other_encoders_fine_tune(kind, tmp_path, write_yaml, tiny_model_dir):
    import transformers

    model_dir = tmp_path / kind
    model_dir.mkdir()
    for name in ("vocab.txt", "tokenizer_config.json"):
        shutil.copy(os.path.join(tiny_model_dir, name), model_dir / name)
    with open(model_dir / "vocab.txt", encoding="utf-8") as f:
        vocab_size = sum(1 for _ in f)
    torch.manual_seed(0)
    model_class = {"bert": "BertModel", "albert": "AlbertModel", "funnel": "FunnelModel",
                   "distilbert": "DistilBertModel"}[kind]
    getattr(transformers, model_class)(tiny_config(kind, vocab_size)).save_pretrained(model_dir)

    config = load_config(write_yaml(tiny_run_config(model_dir, tmp_path / "ckpt", max_steps=3, logging_steps=3)))
    model = get_task("nsmc", config).build_model(str(model_dir))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    top = reinit_top_layer(model)
    top_params = {id(p) for p in top.parameters()}
    for name, param in model.named_parameters():
        if id(param) not in top_params:
            assert torch.equal(before[name], param), name
    assert len(encoder_layers(model)) >= 1

    results = run(config)
    assert results["best"]["step"] == 3 and 0.0 <= results["best"]["score"] <= 100.0
    assert os.path.isfile(tmp_path / "ckpt" / "nsmc_tiny" / "best_model" / "config.json")


# -- an ELECTRA generator is not what ELECTRA fine-tunes -------------------------------------

def make_generator(directory, discriminator=None):
    """A tiny ElectraForMaskedLM directory with its vocab, as pytorch_convert.py writes a generator."""
    from transformers import ElectraConfig, ElectraForMaskedLM

    source = discriminator or make_tiny_electra(str(directory) + "-source")
    config = ElectraConfig.from_pretrained(source)
    ElectraForMaskedLM(config).save_pretrained(directory)
    for name in ("vocab.txt", "tokenizer_config.json"):
        shutil.copy(os.path.join(source, name), directory)
    return str(directory)


def test_a_generator_directory_is_one_line_pointing_at_the_discriminator(tmp_path, write_yaml):
    discriminator = make_tiny_electra(str(tmp_path / "dialog-koelectra-tiny-discriminator"))
    generator = make_generator(tmp_path / "dialog-koelectra-tiny-generator", discriminator)
    path = write_yaml(tiny_run_config(generator, tmp_path / "ckpt", max_steps=2, save_steps=0, logging_steps=0))
    with pytest.raises(UserInputError) as e:
        run(load_config(path))
    assert str(e.value) == (
        f"{path}:7: {generator} is an ELECTRA generator (ElectraForMaskedLM in its config.json); fine-tune the "
        f"discriminator, {discriminator}, or set allow_generator: true to fine-tune the generator on purpose")
    assert not (tmp_path / "ckpt" / "nsmc_tiny" / "best_model").exists()


def test_a_generator_without_a_discriminator_beside_it_says_where_one_comes_from(tmp_path, write_yaml):
    generator = make_generator(tmp_path / "gen")
    path = write_yaml(tiny_run_config(generator, tmp_path / "ckpt", max_steps=2, save_steps=0, logging_steps=0))
    with pytest.raises(UserInputError, match=r"is an ELECTRA generator \(ElectraForMaskedLM in its config.json\); "
                                             r"fine-tune the discriminator \(pytorch_convert.py's "
                                             r"--pt_discriminator_path\), or set allow_generator: true"):
        run(load_config(path))


def test_a_generator_asked_for_on_purpose_is_fine_tuned(tmp_path, write_yaml, caplog):
    generator = make_generator(tmp_path / "gen")
    path = write_yaml(tiny_run_config(generator, tmp_path / "ckpt", max_steps=2, save_steps=0, logging_steps=0,
                                      allow_generator=True))
    with caplog.at_level(logging.INFO):
        results = run(load_config(path))
    assert results["train"]["steps"] == 2
    assert f"fine-tuning the generator {generator} (allow_generator: true)" in caplog.text
    config = json.loads((tmp_path / "ckpt" / "nsmc_tiny" / "best_model" / "config.json").read_text())
    assert config["architectures"] == ["ElectraForSequenceClassification"]
