"""Two vocabs compared by their tokens: the first line where they differ, and when an extended
vocab counts as the checkpoint's (its vocab_extension.json names that vocab as its base)."""
import json
import os

import pytest

from util.errors import UserInputError
from util.vocab_file import VocabFile
from util.vocab_identity import check_vocab_of_model, first_difference

TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]", "[unused1]", "영화", "##가", "재밌", "##다"]


def write(directory, tokens, newline="\n"):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "vocab.txt")
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("".join(t + newline for t in tokens))
    return path


def test_the_first_line_where_two_vocabs_differ(tmp_path):
    base = write(tmp_path / "a", TOKENS)
    swapped = TOKENS[:8] + [TOKENS[9], TOKENS[8]] + TOKENS[10:]
    assert first_difference(VocabFile(base), VocabFile(write(tmp_path / "b", swapped))) == (9, "##가", "재밌")
    assert first_difference(VocabFile(base), VocabFile(write(tmp_path / "c", TOKENS + ["끝"]))) == (12, None, "끝")
    # The same tokens written with CRLF line ends are the same vocab.
    assert first_difference(VocabFile(base), VocabFile(write(tmp_path / "d", TOKENS, "\r\n"))) is None


def test_a_vocab_that_is_not_the_models_is_refused_naming_both_files_and_the_line(tmp_path):
    model = write(tmp_path / "model", TOKENS)
    permuted = write(tmp_path / "run", TOKENS[:7] + TOKENS[7:][::-1])
    with pytest.raises(UserInputError) as error:
        check_vocab_of_model(permuted, model, "saved_model released/")
    message = str(error.value)
    assert message.startswith(f"{permuted}: not the vocab of saved_model released/") and model in message
    assert "line 8 is '##다' here and '영화' in" in message and "\n" not in message
    assert check_vocab_of_model(write(tmp_path / "same", TOKENS, "\r\n"), model, "it") is None


def test_an_extended_vocab_passes_only_when_its_record_names_the_models_vocab(tmp_path):
    model = write(tmp_path / "model", TOKENS)
    extended_tokens = TOKENS[:5] + ["[unused0]", "영화가"] + TOKENS[7:]
    run = write(tmp_path / "run", extended_tokens)
    record = {"base_vocab_sha256": VocabFile(model).sha256, "base_vocab_size": len(TOKENS),
              "new_tokens": [{"id": 6, "token": "영화가", "base_pieces": [7, 8]}]}
    path = tmp_path / "run" / "vocab_extension.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    assert check_vocab_of_model(run, model, "it") == "extension"

    # Made from another vocab: its record names that one.
    path.write_text(json.dumps(dict(record, base_vocab_sha256="0" * 64)), encoding="utf-8")
    with pytest.raises(UserInputError, match=rf"{path}: base_vocab_sha256 0000000000000000… is not {model}'s "
                                              r"\(.{16}…\): the extension was made from another vocab"):
        check_vocab_of_model(run, model, "it")

    # A line changed that the record does not list as new.
    write(tmp_path / "run", extended_tokens[:9] + ["바뀐"] + extended_tokens[10:])
    path.write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(UserInputError, match=r"line 10 is '바뀐' here and '재밌' in .*, and .*vocab_extension.json "
                                             r"does not list id 9 as a new token"):
        check_vocab_of_model(run, model, "it")
