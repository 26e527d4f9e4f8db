"""New tokens written into a released vocab's ``[unusedN]`` slots start as the mean of their old pieces.

``build_vocab.py --extend`` writes ``vocab_extension.json`` beside the extended vocab:
each new token's id (an old ``[unusedN]`` line, so every other id stays and the checkpoint's
tables fit), and ``base_pieces``, the ids the base vocab split it into. A warm start sets the
token's row to the mean of those pieces' rows, in every token table loaded from the
checkpoint (the discriminator's word embeddings, the generator's when untied, and the
generator's output bias). The unused slot's own row was never trained: starting from it
is what made fine-tuning worse in LMkor#6.
"""
import os

from util.errors import UserInputError
from util.files import read_json
from util.vocab_extension import RECORD_NAME as EXTENSION_NAME  # the file build_vocab.py --extend writes

# The tables indexed by token id, as upstream names them.
TOKEN_TABLES = ("electra/embeddings/word_embeddings", "generator/embeddings/word_embeddings",
                "generator_predictions/output_bias")


def read_extension(tokenizer, checkpoint_rows):
    """(new ids, their base pieces, the file) from the vocab_extension.json beside the run's vocab; None without one."""
    path = os.path.join(os.path.dirname(os.path.abspath(tokenizer.vocab_file)), EXTENSION_NAME)
    if not os.path.isfile(path):
        return None
    data = read_json(path, "vocab extension")
    if not isinstance(data, dict) or not isinstance(data.get("new_tokens"), list):
        raise UserInputError(f"{path}: expected a JSON object with a new_tokens list")
    if data.get("base_vocab_size") != checkpoint_rows:
        raise UserInputError(f"{path}: base_vocab_size {data.get('base_vocab_size')!r}, but the checkpoint's "
                             f"electra/embeddings/word_embeddings has {checkpoint_rows} rows: this extension "
                             "was made from another vocab")
    recorded = data.get("tokenizer_type")
    if recorded is not None and recorded != tokenizer.tokenizer_type:
        raise UserInputError(f"{path}: the new tokens were chosen for tokenizer_type {recorded}, "
                             f"the run tokenizes with {tokenizer.tokenizer_type}")
    # That its base_vocab_sha256 is the checkpoint's vocab is checked before (util/vocab_identity.py).
    ids, pieces = [], []
    for n, entry in enumerate(data["new_tokens"]):
        where = f"{path}: new_tokens[{n}]"
        if not isinstance(entry, dict) or not _is_id(entry.get("id"), checkpoint_rows):
            raise UserInputError(f"{where}: needs an integer id below {checkpoint_rows}")
        token = tokenizer.inv_vocab[entry["id"]]
        if entry.get("token") != token:
            raise UserInputError(f"{where}: id {entry['id']} is {token!r} in {tokenizer.vocab_file}, "
                                 f"not {entry.get('token')!r}")
        base = entry.get("base_pieces")
        if not isinstance(base, list) or not base or not all(_is_id(i, checkpoint_rows) for i in base):
            raise UserInputError(f"{where}: base_pieces must be a non-empty list of ids below {checkpoint_rows}")
        ids.append(entry["id"])
        pieces.append(list(base))
    if len(set(ids)) != len(ids):
        raise UserInputError(f"{path}: an id is listed twice in new_tokens")
    for n, base in enumerate(pieces):
        if set(base) & set(ids):
            raise UserInputError(f"{path}: new_tokens[{n}]: a base piece is itself a new token; base pieces "
                                 "must be tokens of the base vocab, whose rows were trained")
    return ids, pieces, path


def _is_id(value, size):
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < size


def mean_rows_op(variable, ids, pieces):
    """An op setting ``variable``'s rows ``ids`` to the mean of its rows ``pieces`` (all read before any write)."""
    import tensorflow.compat.v1 as tf

    table = variable.read_value()
    flat = [i for base in pieces for i in base]
    segments = [n for n, base in enumerate(pieces) for _ in base]
    means = tf.math.unsorted_segment_mean(tf.gather(table, flat), segments, num_segments=len(ids))
    return variable.assign(tf.tensor_scatter_nd_update(table, [[i] for i in ids], means))


def mean_rows(table, ids, pieces):
    """``table`` (an array) with rows ``ids`` set to the mean of its rows ``pieces``, all read before any write
    (``mean_rows_op``'s rule, for the torch backend)."""
    import numpy as np

    out = np.array(table, copy=True)
    for i, base in zip(ids, pieces):
        out[i] = np.mean(np.asarray(table)[base], axis=0)
    return out
