import unicodedata

import pytest

from util.text_cleaning import clean_text, remove_hanja, squash_repeated_symbols


@pytest.mark.parametrize("raw, expected", [
    ("재밌다ㅋㅋㅋㅋㅋ", "재밌다ㅋㅋ"),
    ("최고!!!!!", "최고!!"),
    ("음.....", "음.."),
    ("슬퍼ㅠㅠㅠ", "슬퍼ㅠㅠ"),
    ("~~~~와", "~~와"),
    ("ㅋㅋ", "ㅋㅋ"),               # two is already short enough
    ("1111번 버스", "1111번 버스"),  # digits are kept
    ("aaaa bbbb", "aaaa bbbb"),     # Latin letters are kept
    ("하하하하", "하하하하"),         # Hangul syllables are kept
    ("ㅋㅋㅋ!!!ㅋㅋㅋ", "ㅋㅋ!!ㅋㅋ"),
])
def test_repeated_symbols_keep_two(raw, expected):
    assert squash_repeated_symbols(raw) == expected


def test_hanja_removed_in_every_block():
    assert remove_hanja("훈민정음(訓民正音)") == "훈민정음()"
    assert remove_hanja("\u3400확장A\uf900호환\U00020000확장B") == "확장A호환확장B"
    assert remove_hanja("ㄱ가a1。") == "ㄱ가a1。"  # jamo, syllables, Latin, digits, CJK punctuation stay


def test_nfc_recomposes_decomposed_hangul():
    decomposed = unicodedata.normalize("NFD", "한국어 문장")
    assert len(decomposed) > len("한국어 문장")
    cleaned, _ = clean_text(decomposed)
    assert cleaned == "한국어 문장"
    assert unicodedata.is_normalized("NFC", cleaned)


def test_decomposed_repeats_count_as_syllables():
    # 하 written as two jamo must be recognised as a syllable after NFC, so it is kept.
    cleaned, _ = clean_text(unicodedata.normalize("NFD", "하하하하"))
    assert cleaned == "하하하하"


def test_clean_text_counts_removed_characters_and_collapses_spaces():
    cleaned, removed = clean_text("  韓國   사람ㅋㅋㅋㅋ  ")
    assert cleaned == "사람ㅋㅋ"
    assert removed == len("  韓國   사람ㅋㅋㅋㅋ  ") - len("사람ㅋㅋ")
