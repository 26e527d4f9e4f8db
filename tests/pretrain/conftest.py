"""Tiny pre-training datasets written in the builder's schema (docs/design.md), for the model tests."""
import hashlib
import json
import os

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY_CONFIG = os.path.join(ROOT, "conf", "pretrain", "tiny.json")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def write_vocab(directory, num_words=120):
    tokens = SPECIALS + [f"[unused{i}]" for i in range(5)] + [f"w{i}" for i in range(num_words)]
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "vocab.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(t + "\n" for t in tokens)
    return path, len(tokens)


def make_examples(num_examples, max_seq_length, vocab_size, seed=0):
    """[CLS] a [SEP] b [SEP] with padding; tokens follow a Zipf law and a bigram rule so there is something to learn."""
    rng = np.random.default_rng(seed)
    first_word = 10
    words = np.arange(first_word, vocab_size)
    probs = 1.0 / np.arange(1, len(words) + 1)
    probs /= probs.sum()
    rows = []
    for _ in range(num_examples):
        length = int(rng.integers(max_seq_length // 2, max_seq_length + 1))
        body = rng.choice(words, size=length - 3, p=probs)
        body[1::2] = first_word + (body[0::2][: len(body[1::2])] - first_word + 1) % len(words)
        split = len(body) // 2
        ids = [2] + list(body[:split]) + [3] + list(body[split:]) + [3]
        segments = [0] * (split + 2) + [1] * (len(ids) - split - 2)
        pad = max_seq_length - len(ids)
        rows.append((ids + [0] * pad, [1] * len(ids) + [0] * pad, segments + [0] * pad))
    return rows


def write_tfrecords(directory, rows, num_files=2):
    import tensorflow as tf

    os.makedirs(directory, exist_ok=True)
    paths = []
    for i in range(num_files):
        path = os.path.join(directory, f"pretrain_data.tfrecord-{i}-of-{num_files}")
        with tf.io.TFRecordWriter(path) as writer:
            for ids, mask, segments in rows[i::num_files]:
                feature = {name: tf.train.Feature(int64_list=tf.train.Int64List(value=list(map(int, values))))
                           for name, values in (("input_ids", ids), ("input_mask", mask), ("segment_ids", segments))}
                writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
        paths.append(path)
    return paths


def make_dataset(directory, max_seq_length=64, num_examples=256, with_stats=True):
    """A data dir holding vocab.txt, two TFRecord shards and stats.json; returns its path."""
    vocab_path, vocab_size = write_vocab(directory)
    rows = make_examples(num_examples, max_seq_length, vocab_size)
    write_tfrecords(directory, rows)
    if with_stats:
        with open(vocab_path, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        stats = {"max_seq_length": max_seq_length, "vocab_size": vocab_size, "vocab_sha256": sha,
                 "tokenizer_type": "wordpiece", "do_lower_case": False, "examples": num_examples,
                 "num_out_files": 2}
        with open(os.path.join(directory, "stats.json"), "w") as f:
            json.dump(stats, f)
    return directory


def tiny_hparams(**overrides):
    with open(TINY_CONFIG) as f:
        hparams = json.load(f)
    hparams.update(overrides)
    return hparams


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    return make_dataset(str(tmp_path_factory.mktemp("pretrain_data")))
