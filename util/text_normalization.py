"""How text is normalised before it is tokenized, in every stage: NFC, and no invisible characters.

Hangul typed on macOS or pasted from some web forms is NFD: each syllable is two or three
conjoining jamo, which every vocab here holds only as [UNK]. So every tokenizer a stage
loads composes text to NFC first (util.hf_tokenizer, util.tokenization_mecab_electra,
util.tokenization): fine-tuning, evaluation and prediction cannot read the same text two ways.

The tokenizers also drop what BERT's text cleaning drops: NUL, U+FFFD and every character of
the Unicode categories Cc (controls other than TAB, LF and CR, e.g. U+0085), Cf (format:
zero-width space U+200B, the BOM U+FEFF, soft hyphen, joiners, direction marks), Cs, Co and
Cn. ``normalize_text`` does the same to a text where it enters prediction, so what the
model reads, what is echoed and what entity and answer offsets point into are one string.
Nothing else changes: case, width (full-width Latin stays), compatibility characters
(NFKC is not applied), spacing and punctuation are the model's input as written.
"""
import unicodedata

# Categories the Rust BertNormalizer's clean_text drops (its is_control: char::is_other()).
DROPPED_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Co", "Cn"))
KEPT_CONTROLS = frozenset("\t\n\r")


def _dropped(char):
    if char in KEPT_CONTROLS:
        return False
    return char in ("\x00", "\ufffd") or unicodedata.category(char) in DROPPED_CATEGORIES


def normalize_text(text):
    """``text`` in NFC, without the characters the tokenizers drop (see the module docstring)."""
    text = unicodedata.normalize("NFC", text)
    if text.isprintable():  # the common case: nothing to drop (TAB, LF and CR are not printable)
        return text
    return "".join(c for c in text if not _dropped(c))


def nfc_first(normalizer):
    """A Rust ``tokenizers`` normaliser with NFC put in front of it (``normalizer`` may be None)."""
    from tokenizers import normalizers

    return normalizers.Sequence([normalizers.NFC()] + ([normalizer] if normalizer is not None else []))
