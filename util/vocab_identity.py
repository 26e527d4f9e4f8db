"""Whether a vocab is a model's: compared by tokens, line by line, at every stage that pairs the two.

Same size is not enough: a permuted or retrained vocab of the same length loads into any model
and silently gives every id another token. So warm start (against the vocab beside the
checkpoint or transformers directory), resume (against the model directory's vocab.txt),
conversion (against the same) and fine-tuning (against the checksum the conversion recorded)
refuse a vocab whose tokens differ, naming both files and the first line where they differ.

The one exception is a vocab ``build_vocab.py --extend`` made from the model's: it differs in
the ``[unusedN]`` lines its ``vocab_extension.json`` lists as new tokens, and that file names
its base by sha256 (util/vocab_file.VocabFile.sha256, the same identity every stage records).

Tokens, not bytes, are compared (VocabFile reads a line's ``\\r`` off), so a copy with other
line endings is the same vocab.
"""
import os

from util.errors import UserInputError
from util.files import read_json
from util.vocab_file import VocabFile

EXTENSION_NAME = "vocab_extension.json"  # util/vocab_extension.RECORD_NAME, without importing the builder
RECORD_KEY = "vocab_sha256"  # in a converted directory's config.json: the vocab its weights were trained with


def first_difference(a, b):
    """(1-based line, a's token, b's token) where two VocabFiles first differ (None past a file's end), or None."""
    for line, (x, y) in enumerate(zip(a.tokens, b.tokens), 1):
        if x != y:
            return line, x, y
    if len(a) != len(b):
        line = min(len(a), len(b)) + 1
        return line, a.tokens[line - 1] if len(a) >= line else None, b.tokens[line - 1] if len(b) >= line else None
    return None


def _said(token):
    return "nothing (the file ends)" if token is None else repr(token)


def difference_line(path, other_path, difference):
    line, here, there = difference
    return f"line {line} is {_said(here)} here and {_said(there)} in {other_path}"


def check_vocab_of_model(vocab_file, model_vocab_file, model, allow_extension=True):
    """Refuse ``vocab_file`` unless its tokens are ``model_vocab_file``'s, or (``allow_extension``) it is an
    extension of that vocab recorded in its vocab_extension.json. Returns None (the same vocab) or "extension"."""
    run, base = VocabFile(vocab_file), VocabFile(model_vocab_file)
    difference = first_difference(run, base)
    if difference is None:
        return None
    fix = (f"pretrain with {model_vocab_file} or a vocab build_vocab.py --extend made from it" if allow_extension
           else f"use {model_vocab_file}")
    record_path = os.path.join(os.path.dirname(os.path.abspath(vocab_file)), EXTENSION_NAME)
    if not allow_extension or not os.path.isfile(record_path):
        raise UserInputError(f"{vocab_file}: not the vocab of {model}: "
                             f"{difference_line(vocab_file, model_vocab_file, difference)}; {fix}")
    record = read_json(record_path, "vocab extension")
    recorded = record.get("base_vocab_sha256") if isinstance(record, dict) else None
    if not base.matches(recorded):  # by tokens, or an older record's file bytes
        raise UserInputError(f"{record_path}: base_vocab_sha256 {str(recorded)[:16]}… is not {model_vocab_file}'s "
                             f"({base.sha256[:16]}…): the extension was made from another vocab, not the one of "
                             f"{model}; {fix}")
    new_ids = {entry.get("id") for entry in record.get("new_tokens") or [] if isinstance(entry, dict)}
    if len(run) == len(base):
        for line, (x, y) in enumerate(zip(run.tokens, base.tokens), 1):
            if x != y and line - 1 not in new_ids:
                raise UserInputError(f"{vocab_file}: not the vocab of {model}: "
                                     f"{difference_line(vocab_file, model_vocab_file, (line, x, y))}, and "
                                     f"{record_path} does not list id {line - 1} as a new token; {fix}")
        return "extension"
    raise UserInputError(f"{vocab_file}: not the vocab of {model}: "
                         f"{difference_line(vocab_file, model_vocab_file, difference)} ({len(run)} lines, "
                         f"{len(base)} there; an extension keeps the length); {fix}")


def vocab_beside(directory):
    """The vocab a model directory was trained with: its vocab.txt, else the vocab_file its
    pretrain_config.json records (if that file is there); None when neither is."""
    if not directory:
        return None
    path = os.path.join(directory, "vocab.txt")
    if os.path.isfile(path):
        return path
    config_path = os.path.join(directory, "pretrain_config.json")
    if os.path.isfile(config_path):
        recorded = (read_json(config_path, "pretraining config") or {}).get("vocab_file")
        if recorded:
            recorded = os.path.join(recorded, "vocab.txt") if os.path.isdir(recorded) else recorded
            if os.path.isfile(recorded):
                return recorded
    return None


def check_converted_vocab(model_dir):
    """A transformers directory pytorch_convert.py wrote records the sha256 of its weights' vocab in
    config.json; refuse its vocab.txt when that is another vocab (replaced since)."""
    config_path = os.path.join(model_dir, "config.json")
    vocab_path = os.path.join(model_dir, "vocab.txt")
    if not (os.path.isfile(config_path) and os.path.isfile(vocab_path)):
        return
    recorded = (read_json(config_path, "model config") or {}).get(RECORD_KEY)
    if not recorded:
        return
    vocab = VocabFile(vocab_path)
    actual = vocab.sha256
    if not vocab.matches(recorded):
        raise UserInputError(f"{vocab_path}: not the vocab this model was trained with: {config_path} records "
                             f"{RECORD_KEY} {recorded[:16]}… (written by pytorch_convert.py from the pretraining "
                             f"vocab), this file's is {actual[:16]}…; put back the vocab.txt the conversion wrote")
