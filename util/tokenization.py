"""The one tokenizer every stage uses: vocab building, dataset building, conversion, fine-tuning.

A vocab directory holds ``vocab.txt`` and ``tokenizer_config.json``. The JSON is the
file transformers reads (``tokenizer_class``, ``do_lower_case``, ``strip_accents``) plus
our ``tokenizer_type`` (``wordpiece`` or ``mecab_wordpiece``), so the casing and the
tokenization chosen when the vocab was built travel with it and no later stage has to
be told again. vocab.txt is read as upstream reads it (util/vocab_file.py): an id is a
line number, and a repeated token maps to its last line.

``wordpiece`` runs in the Rust ``tokenizers`` library with the same normaliser and
pre-tokenizer that ``transformers.ElectraTokenizerFast`` builds, so on a ``wordpiece``
vocab our tokens equal transformers' tokens. ``mecab_wordpiece`` is the published
system's algorithm (util/mecab_wordpiece.py): mecab-ko morphemes per eojeol, later ones
``##``-prefixed, a piece missing from the vocab spelled out in characters.

Text is composed to NFC and cleaned of invisible characters first (util/text_normalization.py).
Lower-casing never strips accents: BERT's accent stripping runs NFD, which turns every
Hangul syllable into jamo (한 -> ᄒ ᅡ ᆫ) and then into [UNK].
"""
import os

from util.errors import UserInputError
from util.mecab_wordpiece import SPECIAL_TOKEN_RE, MecabWordPiece, mecab_tagger
from util.text_normalization import nfc_first, normalize_text
from util.vocab_file import SPECIAL_TOKENS, VocabFile, load_vocab  # noqa: F401 (re-exported)

TOKENIZER_TYPES = ("wordpiece", "mecab_wordpiece")
VOCAB_NAME = "vocab.txt"
CONFIG_NAME = "tokenizer_config.json"


class MecabSplitter:
    """Text as mecab-ko morphemes joined by single spaces (special tokens kept whole).

    Not a tokenization stage: mecab_wordpiece runs mecab per eojeol (MecabWordPiece).
    This is for tools and test fixtures that want morpheme-split text, e.g. to train a
    plain WordPiece vocab on it.
    """

    def __init__(self):
        self._tagger = None

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self._tagger = None

    def __call__(self, text):
        if self._tagger is None:
            self._tagger = mecab_tagger()
        parts = []
        for i, chunk in enumerate(SPECIAL_TOKEN_RE.split(text)):
            if i % 2:
                parts.append(chunk)  # a special token, whole
            elif chunk.strip():
                parts.append(self._tagger.parse(chunk).strip())
        return " ".join(parts)


def resolve_vocab_path(path):
    """Accept a vocab directory or a vocab.txt path; return (vocab_file, directory)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        vocab_file = os.path.join(path, VOCAB_NAME)
        directory = path
    else:
        vocab_file = path
        directory = os.path.dirname(path) or "."
    if not os.path.isfile(vocab_file):
        raise UserInputError(f"vocab file not found: {vocab_file}")
    return vocab_file, directory


def read_tokenizer_config(directory):
    """The tokenizer settings recorded beside a vocab, or {} when there is none."""
    from util.files import read_json

    config_path = os.path.join(directory, CONFIG_NAME)
    if not os.path.isfile(config_path):
        return {}
    config = read_json(config_path, "tokenizer config")
    kind = config.get("tokenizer_type", "wordpiece")
    if kind not in TOKENIZER_TYPES:
        raise UserInputError(
            f"{config_path}: tokenizer_type {kind!r} is not one of {', '.join(TOKENIZER_TYPES)}"
        )
    return config


def tokenizer_config(tokenizer_type, do_lower_case):
    """The tokenizer_config.json content for a vocab: loadable by transformers as is."""
    return {
        "tokenizer_class": "ElectraTokenizer",
        "do_lower_case": bool(do_lower_case),
        "strip_accents": False,
        "tokenize_chinese_chars": True,
        "tokenizer_type": tokenizer_type,
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
    }


class KoTokenizer:
    """``wordpiece`` or ``mecab_wordpiece`` over one vocab file, cased as recorded beside it."""

    def __init__(self, vocab_file, tokenizer_type="wordpiece", do_lower_case=False):
        if tokenizer_type not in TOKENIZER_TYPES:
            raise UserInputError(
                f"tokenizer_type {tokenizer_type!r} is not one of {', '.join(TOKENIZER_TYPES)}"
            )
        self.vocab_file = os.fspath(vocab_file)
        self.tokenizer_type = tokenizer_type
        self.do_lower_case = bool(do_lower_case)
        self._file = VocabFile(self.vocab_file)
        self.vocab = self._file.ids  # token -> id of its last line
        self.inv_vocab = self._file.tokens  # id (line) -> token
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (
            self.vocab[t] for t in SPECIAL_TOKENS
        )
        if tokenizer_type == "mecab_wordpiece":
            self.backend = None
            self._mecab = MecabWordPiece(self.vocab, self.do_lower_case)
        else:
            from tokenizers import BertWordPieceTokenizer

            # The Rust reader numbers lines as upstream does (duplicates -> last line).
            self.backend = BertWordPieceTokenizer(
                self.vocab_file, clean_text=True, handle_chinese_chars=True,
                strip_accents=False, lowercase=self.do_lower_case,
            )
            # NFC first, as every tokenizer here (util/text_normalization.py).
            self.backend.normalizer = nfc_first(self.backend.normalizer)
            self._mecab = None

    @classmethod
    def from_vocab(cls, path, tokenizer_type=None, do_lower_case=None, flag=None, override=None):
        """Load from a vocab directory or vocab.txt; explicit arguments override the recorded ones.

        With ``flag`` (how the user set ``tokenizer_type``, e.g. "--tokenizer_type"), a type
        contradicting the one the vocab records is an error that names both and ``override``,
        the way to tokenize so on purpose: a mecab_wordpiece vocab split by plain WordPiece
        loses whole morphemes to [UNK] without any other sign. A bare vocab records nothing.
        """
        vocab_file, directory = resolve_vocab_path(path)
        config = read_tokenizer_config(directory)
        recorded = config.get("tokenizer_type")
        if flag and tokenizer_type is not None and recorded is not None and tokenizer_type != recorded:
            raise UserInputError(
                f"{flag} {tokenizer_type} contradicts {os.path.join(directory, CONFIG_NAME)}, which records "
                f"tokenizer_type {recorded} for {vocab_file}: drop {flag} to use the vocab's"
                + (f", or {override} to tokenize it as {tokenizer_type} on purpose" if override else ""))
        if tokenizer_type is None:
            tokenizer_type = config.get("tokenizer_type", "wordpiece")
        if do_lower_case is None:
            do_lower_case = config.get("do_lower_case", False)
        return cls(vocab_file, tokenizer_type, do_lower_case)

    def __getstate__(self):
        # The Rust backend does not pickle; worker processes rebuild it from the file.
        return {"vocab_file": self.vocab_file, "tokenizer_type": self.tokenizer_type,
                "do_lower_case": self.do_lower_case}

    def __setstate__(self, state):
        self.__init__(state["vocab_file"], state["tokenizer_type"], state["do_lower_case"])

    @property
    def vocab_size(self):
        """Lines in vocab.txt: the model's embedding rows, duplicates included."""
        return len(self._file)

    @property
    def vocab_bytes(self):
        return self._file.raw

    @property
    def vocab_sha256(self):
        """The vocab's identity, by tokens (util/vocab_file.py): a CRLF copy has the same."""
        return self._file.sha256

    def vocab_matches(self, digest):
        """Whether a recorded ``vocab_sha256`` (stats.json, vocab_extension.json) is this vocab's."""
        return self._file.matches(digest)

    @property
    def config(self):
        return tokenizer_config(self.tokenizer_type, self.do_lower_case)

    def tokenize_batch(self, texts):
        if self._mecab is not None:
            return [self._mecab.tokenize(normalize_text(t)) for t in texts]
        return [e.tokens for e in self.backend.encode_batch(list(texts), add_special_tokens=False)]

    def encode_batch(self, texts):
        """Token ids without [CLS]/[SEP], one list per text."""
        if self._mecab is not None:
            return [self.convert_tokens_to_ids(self._mecab.tokenize(normalize_text(t))) for t in texts]
        return [e.ids for e in self.backend.encode_batch(list(texts), add_special_tokens=False)]

    def unk_strings(self, texts):
        """For each text, the stretches of it that became [UNK], in order (what a vocab lacks)."""
        if self._mecab is not None:
            return [self._mecab.unk_strings(t) for t in texts]
        texts = list(texts)
        unk = self.unk_id
        # The Rust tokenizer's offsets point into the text as given, through its normaliser.
        return [[text[start:end] for token_id, (start, end) in zip(e.ids, e.offsets) if token_id == unk]
                for text, e in zip(texts, self.backend.encode_batch(texts, add_special_tokens=False))]

    def tokenize(self, text):
        return self.tokenize_batch([text])[0]

    def encode(self, text):
        return self.encode_batch([text])[0]

    def convert_tokens_to_ids(self, tokens):
        vocab, unk = self.vocab, self.unk_id
        return [vocab.get(t, unk) for t in tokens]

    def convert_ids_to_tokens(self, ids):
        return [self.inv_vocab[i] for i in ids]

    def save(self, directory):
        """Write vocab.txt (the very bytes read: ids and checksum stay) and tokenizer_config.json."""
        from util.files import atomic_write, write_json

        with atomic_write(os.path.join(directory, VOCAB_NAME), "wb") as f:
            f.write(self.vocab_bytes)
        write_json(os.path.join(directory, CONFIG_NAME), self.config)
