"""prepare_text applies mecab pre-splitting exactly when the vocab or the YAML asks for it."""
import json

from finetune.config import FinetuneConfig
from finetune.text import needs_mecab, prepare_text, prepare_texts
from util.tokenization import MecabSplitter, tokenizer_config

TEXT = "영화가정말재밌었어요"


def model_dir(tmp_path, kind):
    directory = tmp_path / kind
    directory.mkdir()
    (directory / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(kind, False)), encoding="utf-8")
    return str(directory)


def test_mecab_vocab_dir_splits(tmp_path):
    mecab_dir = model_dir(tmp_path, "mecab_wordpiece")
    expected = MecabSplitter()(TEXT)
    assert expected != TEXT and expected.replace(" ", "") == TEXT
    assert prepare_text(TEXT, mecab_dir) == expected
    assert prepare_text(TEXT, FinetuneConfig({"mecab": False, "model_name_or_path": mecab_dir})) == expected
    assert prepare_text(TEXT, {"tokenizer_type": "mecab_wordpiece"}) == expected
    assert prepare_texts([TEXT, None, ""], mecab_dir) == [expected, None, ""]


def test_wordpiece_dir_unchanged_unless_yaml_says_mecab(tmp_path):
    plain_dir = model_dir(tmp_path, "wordpiece")
    assert prepare_text(TEXT, plain_dir) == TEXT
    assert not needs_mecab(FinetuneConfig({"mecab": False, "model_name_or_path": plain_dir}))
    assert prepare_text(TEXT, FinetuneConfig({"mecab": True, "model_name_or_path": plain_dir})) == MecabSplitter()(TEXT)


def test_transformers_tokenizer_as_info(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert prepare_text(TEXT, tokenizer) == TEXT  # the tiny model's vocab is plain wordpiece
