"""vocab.txt read as upstream reads it: the released Dialog-KoELECTRA vocab's quirks.

The fixture is written here: a vocab with repeated tokens and no final newline, like the
released file (which stays out of the project).
"""
import logging
import os

import pytest

from util.tokenization import KoTokenizer
from util.vocab_file import VocabFile

QUIRKY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]", "영화", "##가", "ARS", "재밌", "##다",
          "ARS", "평점", "##들", "##은", "캐시백", "캐시백"]


def write_quirky(directory, extra_tokens=()):
    """vocab.txt with QUIRKY's repeats and no final newline, then ``extra_tokens`` (those not
    in QUIRKY, in order): e.g. a corpus's characters, so real text tokenizes, every extra id
    lying after both holes as most of the released vocab does. Returns its path."""
    tokens = QUIRKY + [t for t in dict.fromkeys(extra_tokens) if t not in QUIRKY]
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "vocab.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(tokens))  # no final newline
    return path


def test_ids_are_line_numbers_and_repeats_map_to_their_last_line(tmp_path, caplog):
    path = write_quirky(str(tmp_path))
    with caplog.at_level(logging.WARNING):
        vocab = VocabFile(path)
    assert len(vocab) == len(QUIRKY) == 17
    assert vocab.ids["ARS"] == 11 and vocab.ids["캐시백"] == 16
    assert vocab.ids["평점"] == 12  # not shifted by the repeat above it
    assert vocab.duplicates == {"ARS": [9, 12], "캐시백": [16, 17]}
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert "vocab.txt:12: 'ARS' repeats line 9" in warnings[0]


def test_tokenizer_over_the_quirky_vocab_matches_transformers(tmp_path):
    os.environ.setdefault("USE_TF", "0")
    from transformers import BertTokenizer

    path = write_quirky(str(tmp_path))
    ours = KoTokenizer(path)
    assert ours.vocab_size == 17 and ours.inv_vocab[8] == "ARS"
    theirs = BertTokenizer(path, do_lower_case=False)
    for text in ["ARS 평점", "캐시백 영화가", "ARS캐시백"]:
        assert ours.encode(text) == theirs.convert_tokens_to_ids(theirs.tokenize(text)), text
    mecab = KoTokenizer(path, "mecab_wordpiece")
    assert mecab.encode("평점들은 ARS") == [12, 13, 14, 11]
    assert mecab.vocab_size == 17


def test_extra_tokens_come_after_the_repeats_unshifted(tmp_path):
    path = write_quirky(str(tmp_path), ["가", "ARS", "##나", "가", "##가"])
    assert not open(path, "rb").read().endswith(b"\n")
    vocab = VocabFile(path)
    assert vocab.tokens == QUIRKY + ["가", "##나"]
    assert vocab.ids["가"] == 17 and vocab.ids["##나"] == 18 and vocab.ids["ARS"] == 11
    assert vocab.duplicates == {"ARS": [9, 12], "캐시백": [16, 17]}


def test_saving_keeps_the_file_byte_for_byte(tmp_path):
    path = write_quirky(str(tmp_path))
    out = tmp_path / "copy"
    KoTokenizer(path).save(str(out))
    assert (out / "vocab.txt").read_bytes() == open(path, "rb").read()
    assert KoTokenizer.from_vocab(str(out)).vocab_sha256 == KoTokenizer(path).vocab_sha256


@pytest.mark.parametrize("content, message", [
    (b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n\xff\n", "not UTF-8"),
    (b"[PAD]\n[UNK]\n\n[CLS]\n[SEP]\n[MASK]", "vocab.txt:3: empty line"),
])
def test_bad_vocab_file_names_the_problem(tmp_path, content, message):
    from util.errors import UserInputError

    (tmp_path / "vocab.txt").write_bytes(content)
    with pytest.raises(UserInputError, match=message):
        VocabFile(str(tmp_path / "vocab.txt"))


def test_a_vocabs_identity_is_its_tokens_not_its_line_endings(tmp_path):
    """A CRLF copy (a Windows editor, git's autocrlf) is the same vocab: same ids, same sha256."""
    lf = tmp_path / "lf" / "vocab.txt"
    lf.parent.mkdir()
    lf.write_bytes("".join(t + "\n" for t in QUIRKY).encode("utf-8"))
    crlf = tmp_path / "crlf" / "vocab.txt"
    crlf.parent.mkdir()
    crlf.write_bytes(lf.read_bytes().replace(b"\n", b"\r\n"))
    bare = tmp_path / "bare" / "vocab.txt"  # no final newline, as the released vocab
    bare.parent.mkdir()
    bare.write_bytes(lf.read_bytes()[:-1])
    vocabs = [VocabFile(str(p)) for p in (lf, crlf, bare)]
    assert vocabs[0].ids == vocabs[1].ids == vocabs[2].ids
    assert vocabs[0].sha256 == vocabs[1].sha256 == vocabs[2].sha256
    # For the usual file (LF, final newline) the token digest is the file's own sha256: what
    # stats.json recorded before, so those datasets still match.
    import hashlib

    assert vocabs[0].sha256 == hashlib.sha256(lf.read_bytes()).hexdigest()
    # The byte digest older stats.json files hold for the other two is still accepted.
    for vocab, path in zip(vocabs, (lf, crlf, bare)):
        assert vocab.matches(hashlib.sha256(path.read_bytes()).hexdigest())
    assert not vocabs[0].matches(hashlib.sha256(crlf.read_bytes()).hexdigest())
    other = tmp_path / "other.txt"
    other.write_bytes(lf.read_bytes().replace("재밌".encode(), "재미".encode()))
    assert VocabFile(str(other)).sha256 != vocabs[0].sha256
