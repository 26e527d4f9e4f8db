"""The cleaning the seed describes: squash repeated symbols, drop Chinese characters, NFC.

Kept free of I/O so every stage (preprocess, dataset building, tests) cleans the same way.
"""
import re
import unicodedata

# Three or more of the same character that is not a digit, Latin letter or Hangul
# syllable (so ㅋㅋㅋㅋ, !!!!, ~~~~ and .... qualify) keep their first two.
_REPEATED_SYMBOL = re.compile(r"([^0-9a-zA-Z가-힣])\1{2,}")
# CJK ideographs (hanja): the unified block, extension A, compatibility ideographs and the
# supplementary-plane extensions.
_HANJA = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
_WHITESPACE = re.compile(r"\s+")


def squash_repeated_symbols(text):
    return _REPEATED_SYMBOL.sub(r"\1\1", text)


def remove_hanja(text):
    return _HANJA.sub("", text)


def clean_text(text):
    """Return ``(cleaned, characters_removed)`` for one line of raw text.

    NFC comes first so a Hangul syllable written as decomposed jamo is recognised as
    a syllable by the rules after it; NFD is never used because it splits every
    syllable into jamo. Whitespace runs become one space, since the repeated-symbol
    rule would otherwise keep two.
    """
    text = unicodedata.normalize("NFC", text)
    before = len(text)
    text = remove_hanja(text)
    text = squash_repeated_symbols(text)
    text = _WHITESPACE.sub(" ", text).strip()
    return text, before - len(text)
