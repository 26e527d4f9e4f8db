"""Tiny TF checkpoints as released ELECTRA checkpoints are: upstream's variable names, model variables only.

The names come from the converter's account of upstream's layout (convert/to_transformers.py),
not from our training graph, and the files hold no ``adam_m``/``adam_v`` slots and no
``global_step``, as google-research/electra's and KoELECTRA's released checkpoints.
"""
import json
import os

import numpy as np

from convert.checkpoint import Architecture
from convert.to_transformers import discriminator_entries, generator_entries

# The discriminator's positions (128) outnumber the dataset's max_seq_length (64), as
# KoELECTRA's 512 do a 128-token dataset; the generator is 3/4 as wide and half as deep.
DISC = {"vocab_size": 130, "embedding_size": 32, "hidden_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 1, "intermediate_size": 256, "max_position_embeddings": 128, "type_vocab_size": 2}
GEN = dict(DISC, hidden_size=48, num_hidden_layers=1, intermediate_size=192)
# A vocab extension of conftest.write_vocab's vocab: [unused1], [unused3] -> pieces w3 w4, w7 w8 w9.
NEW_TOKENS = {6: ("w3w4", [13, 14]), 8: ("w7w8w9", [17, 18, 19])}


def upstream_shapes(disc=DISC, gen=GEN, untied_embeddings=False):
    """name -> shape of every model variable; ``gen=None`` for a checkpoint without a generator."""
    arch = Architecture(discriminator=disc, generator=gen,
                        generator_embeddings_scope="generator" if untied_embeddings else "electra")
    if gen is not None and untied_embeddings:
        arch.generator = dict(gen, embedding_size=gen["hidden_size"])  # our untied generator embeds at its width
    entries = discriminator_entries(arch) + (generator_entries(arch) if gen is not None else [])
    return {name: shape for name, shape, _, _ in entries}


def write_released_checkpoint(prefix, shapes, seed=0):
    """Random values under exactly these names, nothing else; returns name -> array."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    tensors = {name: (0.2 * rng.standard_normal(shape) + (1.0 if name.endswith("gamma") else 0.0)).astype(np.float32)
               for name, shape in shapes.items()}
    names = sorted(tensors)
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])
    return tensors


def write_bert_checkpoint(prefix):
    """A BERT checkpoint (google-research/bert's names), to be refused."""
    shapes = {"bert/embeddings/word_embeddings": [130, 32],
              "bert/encoder/layer_0/attention/self/query/kernel": [32, 32],
              "cls/predictions/output_bias": [130], "cls/seq_relationship/output_weights": [2, 32]}
    return write_released_checkpoint(prefix, shapes)


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f)


def extend_vocab(data_dir, new):
    """What build_vocab.py --extend leaves beside a dataset's vocab: ``new`` {id: (token, base piece ids)}
    written into those [unusedN] lines, vocab_extension.json, and stats.json's checksum updated."""
    from util.vocab_file import VocabFile

    with open(os.path.join(data_dir, "vocab.txt"), encoding="utf-8") as f:
        tokens = f.read().splitlines()
    extension = {"base_vocab_sha256": "", "base_vocab_size": len(tokens), "tokenizer_type": "wordpiece",
                 "new_tokens": [{"id": i, "token": t, "replaced": tokens[i], "base_pieces": p}
                                for i, (t, p) in new.items()]}
    for i, (token, _) in new.items():
        tokens[i] = token
    with open(os.path.join(data_dir, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(tokens) + "\n")
    write_json(os.path.join(data_dir, "vocab_extension.json"), extension)
    stats_path = os.path.join(data_dir, "stats.json")
    with open(stats_path) as f:
        stats = json.load(f)
    write_json(stats_path, dict(stats, vocab_sha256=VocabFile(os.path.join(data_dir, "vocab.txt")).sha256))
