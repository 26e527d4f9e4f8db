"""Text and offsets for tasks that point into the text (NER tags, QA answer spans).

A ``mecab_wordpiece`` run tokenizes with util.hf_tokenizer's MecabElectraTokenizerFast,
whose offset mapping already points into the original text, so nothing is pre-split
here and positions map one to one. A plain WordPiece tokenizer on a run that needs mecab
would silently give other tokens than pretraining saw, so that is refused.
``align`` remains for callers that transform text by inserting or removing whitespace.
"""
from util.errors import UserInputError


def align(original, transformed):
    """Index in ``original`` of every character of ``transformed``.

    ``transformed`` must be ``original`` with whitespace inserted, removed or changed;
    any other difference is an error. Whitespace maps to the next original character.
    """
    positions, i = [], 0
    for ch in transformed:
        if ch.isspace():
            positions.append(i)
            continue
        while i < len(original) and original[i].isspace():
            i += 1
        if i >= len(original) or original[i] != ch:
            found = original[i] if i < len(original) else "end of text"
            raise UserInputError(
                f"mecab pre-splitting changed the text ({ch!r} where the original has "
                f"{found!r} at character {i} of {original[:40]!r}...), so offsets cannot be "
                "mapped back; set mecab: false or use a wordpiece vocab"
            )
        positions.append(i)
        i += 1
    return positions


class Presplitter:
    """The text as the tokenizer takes it, with each character's original position."""

    def __init__(self, use_mecab=False):
        self.use_mecab = bool(use_mecab)

    @classmethod
    def for_run(cls, config, tokenizer):
        """Refuse a plain tokenizer where the YAML (``mecab: true``) or the vocab's
        ``tokenizer_type`` asks for mecab; the mecab tokenizer needs no pre-split."""
        from finetune.text import does_mecab, needs_mecab

        if (needs_mecab(config) or needs_mecab(tokenizer)) and not does_mecab(tokenizer):
            raise UserInputError(
                f"{getattr(tokenizer, 'name_or_path', '') or 'tokenizer'}: this run needs mecab_wordpiece "
                "tokenization but the tokenizer is plain WordPiece; load it with "
                "util.hf_tokenizer.load_tokenizer (finetune.models.load_tokenizer does)")
        return cls(does_mecab(tokenizer))

    @property
    def active(self):
        return False  # the tokenizer does any mecab work; texts pass unchanged

    def text(self, text):
        """(text to tokenize, original index of each of its characters)."""
        return text, range(len(text))

    def words(self, words):
        """Each word on its own, so word boundaries survive; maps per word."""
        return list(words), [range(len(w)) for w in words]
