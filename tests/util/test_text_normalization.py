"""Text is NFC, and free of the characters the tokenizer drops, whichever way it reaches a tokenizer.

NFD Hangul (macOS, some web forms) is the same text as NFC; before normalisation every
tokenizer read its jamo as [UNK]. Real NSMC test reviews are fed in both forms, and with
invisible characters (ZWSP, a BOM, NUL) added, to each tokenizer a stage loads.
"""
import os
import unicodedata

import pytest

from tests.conftest import SHARED_DATA
from util.text_normalization import normalize_text

NSMC = os.path.join(SHARED_DATA, "nsmc")
pytestmark = pytest.mark.skipif(not os.path.isdir(NSMC), reason="../shared/data/nsmc is not on this machine")


def reviews(n=300):
    with open(os.path.join(NSMC, "ratings_test.txt"), encoding="utf-8") as f:
        docs = [line.rstrip("\n").split("\t")[1] for line in list(f)[1:n + 1]]
    return [d for d in docs if d.strip()]


def nfd(text):
    return unicodedata.normalize("NFD", text)


def test_normalize_text_is_nfc_without_the_characters_berts_cleaning_drops():
    from tokenizers import normalizers

    rust = normalizers.Sequence([normalizers.NFC(), normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)])
    texts = reviews()
    marked = [nfd(t) for t in texts] + ["\ufeff" + t for t in texts[:20]] + \
        [t[:3] + "\u200b" + t[3:] + "\x00" for t in texts[:20]] + ["\u200b\ufeff\x00", "a\u00adb\ue000c\ufffd"]
    assert normalize_text(nfd("재밌어요")) == "재밌어요" and len(nfd("재밌어요")) == 9
    assert normalize_text("삼성\u200b전자\x00") == "삼성전자" and normalize_text("\ufeff좋다") == "좋다"
    for text in marked:
        ours = normalize_text(text)
        assert unicodedata.is_normalized("NFC", ours)
        # The same characters the Rust BERT normaliser drops (it also maps whitespace to " ").
        assert "".join(" " if c.isspace() else c for c in ours) == rust.normalize_str(text), text


@pytest.mark.parametrize("tokenizer_type", ["wordpiece", "mecab_wordpiece"])
def test_every_tokenizer_reads_nfd_as_nfc(tmp_path, tokenizer_type):
    from util.hf_tokenizer import load_tokenizer
    from util.tokenization import KoTokenizer
    from util.vocab_builder import build_vocab

    texts = reviews()
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    build_vocab(str(corpus), str(tmp_path / "vocab"), tokenizer_type, vocab_size=2000, min_frequency=1,
                limit_alphabet=3000, unused_size=5)
    fast = load_tokenizer(str(tmp_path / "vocab"))  # fine-tuning, prediction, conversion
    ko = KoTokenizer.from_vocab(str(tmp_path / "vocab"))  # vocab and dataset building
    decomposed = [nfd(t) + "\u200b" for t in texts]
    assert decomposed != texts
    assert fast(decomposed)["input_ids"] == fast(texts)["input_ids"]
    assert ko.encode_batch(decomposed) == ko.encode_batch(texts)
    unk = fast.unk_token_id
    assert sum(ids.count(unk) for ids in fast(decomposed)["input_ids"]) < len(texts)  # not a sea of [UNK]
