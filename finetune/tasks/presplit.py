"""Mecab pre-splitting for tasks that point into the text (NER tags, QA answer spans).

A ``mecab_wordpiece`` vocab expects text split into morphemes by spaces before WordPiece
(``KoTokenizer.pretokenize``). That moves every character, so the tokenizer's offsets no
longer point into the original text. Mecab only inserts or collapses whitespace, so each
character of the split text is matched back to its original position here and offsets
are translated through that map.
"""
from util.errors import UserInputError
from util.tokenization import MecabSplitter


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
    """Identity, or mecab splitting with a map back to the original characters."""

    def __init__(self, use_mecab):
        self._mecab = MecabSplitter() if use_mecab else None

    @classmethod
    def for_run(cls, config, tokenizer):
        """Mecab exactly when ``finetune.text`` would split the other tasks' text: the YAML
        says ``mecab: true`` or the vocab's ``tokenizer_type`` is ``mecab_wordpiece``."""
        from finetune.text import needs_mecab

        return cls(needs_mecab(config) or needs_mecab(tokenizer))

    @property
    def active(self):
        return self._mecab is not None

    def text(self, text):
        """(text to tokenize, original index of each of its characters)."""
        if self._mecab is None:
            return text, range(len(text))
        split = self._mecab(text)
        return split, align(text, split)

    def words(self, words):
        """Each word split on its own, so word boundaries survive; maps per word."""
        pairs = [self.text(w) for w in words]
        return [p[0] for p in pairs], [p[1] for p in pairs]
