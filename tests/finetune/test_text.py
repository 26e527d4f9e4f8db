"""Which runs need mecab, and that texts now reach the (mecab-aware) tokenizer unchanged."""
import json

import pytest

from finetune.config import FinetuneConfig
from finetune.tasks.presplit import Presplitter
from finetune.text import does_mecab, needs_mecab, prepare_text, prepare_texts
from util.errors import UserInputError
from util.tokenization import tokenizer_config

TEXT = "영화가정말재밌었어요"


def model_dir(tmp_path, kind):
    directory = tmp_path / kind
    directory.mkdir()
    (directory / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(kind, False)), encoding="utf-8")
    return str(directory)


def test_mecab_vocab_dir_or_yaml_needs_mecab(tmp_path):
    mecab_dir = model_dir(tmp_path, "mecab_wordpiece")
    plain_dir = model_dir(tmp_path, "wordpiece")
    assert needs_mecab(mecab_dir) and needs_mecab({"tokenizer_type": "mecab_wordpiece"})
    assert needs_mecab(FinetuneConfig({"mecab": False, "model_name_or_path": mecab_dir}))
    assert needs_mecab(FinetuneConfig({"mecab": True, "model_name_or_path": plain_dir}))
    assert not needs_mecab(FinetuneConfig({"mecab": False, "model_name_or_path": plain_dir}))
    # The mecab tokenizer splits by itself: a space-separated pre-split would change its tokens.
    assert prepare_text(TEXT, mecab_dir) == TEXT and prepare_texts([TEXT, ""], mecab_dir) == [TEXT, ""]


def test_plain_tokenizer_on_a_mecab_run_is_refused(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    plain = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert not does_mecab(plain)
    assert not Presplitter.for_run(FinetuneConfig({"mecab": False, "model_name_or_path": tiny_model_dir}), plain).active
    with pytest.raises(UserInputError, match="needs mecab_wordpiece tokenization"):
        Presplitter.for_run(FinetuneConfig({"mecab": True, "model_name_or_path": tiny_model_dir}), plain)
