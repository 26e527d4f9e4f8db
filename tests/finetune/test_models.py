"""Any local transformers encoder fine-tunes: BERT, ALBERT, Funnel and DistilBERT directories too."""
import os
import shutil

import pytest
import torch

from finetune.config import load_config
from finetune.models import encoder_layers, reinit_top_layer
from finetune.tasks import get_task
from finetune.trainer import run

from finetune_helpers import tiny_run_config


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
