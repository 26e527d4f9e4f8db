"""Conversion pairs a checkpoint's rows with the vocab it was trained with: --vocab_dir with another
vocab of the same size is refused naming both files and the first line that differs, and the
converted directory records the vocab's sha256, so fine-tuning can refuse a vocab.txt replaced since."""
import json
import os
import shutil

import pytest

from tiny_checkpoint import bert_config, make_model_dir

from convert.pipeline import convert_checkpoint
from util.errors import UserInputError
from util.vocab_file import VocabFile

VOCAB = 150


def model_dir_of(tmp_path):
    return make_model_dir(str(tmp_path / "model"), bert_config(32, 1, 2, 16, VOCAB), bert_config(16, 1, 1, 16, VOCAB))


def test_a_vocab_dir_that_is_not_the_checkpoints_is_refused(tmp_path):
    model_dir = model_dir_of(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    with open(os.path.join(model_dir, "vocab.txt"), encoding="utf-8") as f:
        tokens = f.read().split("\n")[:-1]
    tokens[40], tokens[41] = tokens[41], tokens[40]
    (other / "vocab.txt").write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    with pytest.raises(UserInputError) as error:
        convert_checkpoint(model_dir, str(tmp_path / "disc"), vocab_dir=str(other), log=lambda _: None)
    message = str(error.value)
    assert message.startswith(f"{other / 'vocab.txt'}: not the vocab of the checkpoint in {model_dir}: line 41 is "
                              f"{tokens[40]!r} here and {tokens[41]!r} in {os.path.join(model_dir, 'vocab.txt')}")
    assert not (tmp_path / "disc").exists()

    # The model dir's own vocab, given as --vocab_dir (a copy with CRLF line ends), converts.
    same = tmp_path / "same"
    same.mkdir()
    with open(os.path.join(model_dir, "vocab.txt"), encoding="utf-8") as f:
        (same / "vocab.txt").write_bytes(f.read().replace("\n", "\r\n").encode("utf-8"))
    convert_checkpoint(model_dir, str(tmp_path / "disc"), vocab_dir=str(same), log=lambda _: None)


def test_the_converted_directory_records_its_vocab_and_fine_tuning_refuses_another(tmp_path):
    from finetune.config import FinetuneConfig
    from finetune.models import load_tokenizer

    model_dir = model_dir_of(tmp_path)
    disc = str(tmp_path / "disc")
    convert_checkpoint(model_dir, disc, log=lambda _: None)
    with open(os.path.join(disc, "config.json"), encoding="utf-8") as f:
        assert json.load(f)["vocab_sha256"] == VocabFile(os.path.join(model_dir, "vocab.txt")).sha256
    config = FinetuneConfig({"do_lower_case": False, "mecab": False})
    load_tokenizer(config, disc)  # its own vocab

    # Another vocab of the same size put in its place.
    with open(os.path.join(disc, "vocab.txt"), encoding="utf-8") as f:
        tokens = f.read().split("\n")[:-1]
    replaced = tmp_path / "replaced"
    shutil.copytree(disc, replaced)
    (replaced / "vocab.txt").write_text("".join(t + "\n" for t in tokens[:-2] + tokens[-2:][::-1]), encoding="utf-8")
    with pytest.raises(UserInputError, match=rf"{replaced}/vocab.txt: not the vocab this model was trained with: "
                                             rf"{replaced}/config.json records vocab_sha256 "):
        load_tokenizer(config, str(replaced))
