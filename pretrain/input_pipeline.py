"""Finding, checking and reading the pre-training TFRecords.

Each record is a tf.train.Example with int64 ``input_ids``, ``input_mask`` and
``segment_ids`` of length ``max_seq_length`` (docs/design.md); ``stats.json`` beside the
files records the vocab and sequence length the dataset was built with.

Finding and checking the files serves both backends and imports no TensorFlow (gs:// paths go
through tf.io.gfile, imported only for them: pretrain/tfrecords.py); ``input_fn_builder`` is
the TF backend's reader and imports TensorFlow when called.
"""
import json
import os

from pretrain import damage_check, tfrecords
from util.errors import UserInputError
from util.files import read_json

FEATURES = ("input_ids", "input_mask", "segment_ids")
PATTERNS = ("pretrain_data.tfrecord*", os.path.join("pretrain_tfrecords", "pretrain_data.tfrecord*"))


def find_tfrecords(data_dir, patterns=None):
    """The TFRecord files: every match of ``patterns`` (comma-separated globs) if given, else the
    first of ``DATA_DIR/pretrain_data.tfrecord*`` and ``DATA_DIR/pretrain_tfrecords/...`` that matches."""
    if patterns:
        groups = [[p.strip() for p in patterns.split(",") if p.strip()]]
    else:
        groups = [[os.path.join(data_dir, p)] for p in PATTERNS]
    for group in groups:
        # A gs:// data dir (Cloud TPU) is globbed through tf.io.gfile.
        files = sorted({f for p in group for f in tfrecords.glob(p) if not os.path.basename(f).startswith(".")})
        if files:
            return files
    tried = " or ".join(p for group in groups for p in group)
    raise UserInputError(f"no TFRecords found: nothing matches {tried}")


def read_stats(tfrecord_files):
    """stats.json beside the TFRecords, or None for a dataset without one."""
    path = os.path.join(os.path.dirname(tfrecord_files[0]), "stats.json")
    if not tfrecords.exists(path):
        return path, None
    if not tfrecords.is_remote(path):
        return path, read_json(path, "dataset stats")
    with tfrecords.open_file(path, "r") as f:
        try:
            return path, json.load(f)
        except json.JSONDecodeError as e:
            raise UserInputError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None


def check_dataset(config, tokenizer, tfrecord_files):
    """Refuse a dataset built with another vocab or sequence length (one line naming the key),
    or with a shard that is missing or cut short (one line naming the file)."""
    path, stats = read_stats(tfrecord_files)
    damage_check.check_shards(tfrecord_files, stats, path, config.max_seq_length)
    if stats is None:
        return None
    expected = {"vocab_sha256": tokenizer.vocab_sha256, "vocab_size": config.vocab_size,
                "max_seq_length": config.max_seq_length}
    for key, value in expected.items():
        if key not in stats:
            continue
        # A vocab's identity is its tokens (a CRLF copy is the same vocab); older stats.json
        # files hold the sha256 of the file's bytes, accepted for that very file.
        same = tokenizer.vocab_matches(stats[key]) if key == "vocab_sha256" else stats[key] == value
        if not same:
            raise UserInputError(f"{path}: dataset {key} is {stats[key]!r} but the config/vocab "
                                 f"({tokenizer.vocab_file}) gives {value!r}; rebuild the dataset or fix the config")
    for key in ("tokenizer_type", "do_lower_case"):
        if key in stats and stats[key] != getattr(config, key):
            raise UserInputError(f"{path}: dataset {key} is {stats[key]!r} but the config gives "
                                 f"{getattr(config, key)!r}")
    return stats


def decode_record(record, max_seq_length):
    import tensorflow.compat.v1 as tf

    spec = {name: tf.io.FixedLenFeature([max_seq_length], tf.int64) for name in FEATURES}
    example = tf.io.parse_single_example(record, spec)
    # int64 is all tf.Example stores; the TPU wants int32.
    return {name: tf.cast(value, tf.int32) for name, value in example.items()}


def shard_plan(files, num_shards, shard_id):
    """Which part of the data one of ``num_shards`` input pipelines reads, so none reads an
    example twice: whole files when there are at least as many files as pipelines, else every
    ``num_shards``-th record of every file. Returns (files, record_shard or None)."""
    if num_shards <= 1:
        return list(files), None
    if len(files) >= num_shards:
        return list(files[shard_id::num_shards]), None
    return list(files), (num_shards, shard_id)


def input_fn_builder(files, max_seq_length, is_training, num_cpu_threads=2):
    """An ``input_fn(params)`` for TPUEstimator: repeated, shuffled, fixed-size batches.

    Under a tf.distribute strategy the Estimator passes an ``input_context``: each worker
    then reads its own shard (``shard_plan``) and ``params["batch_size"]`` is per replica.
    """

    import tensorflow.compat.v1 as tf

    def input_fn(params, input_context=None):
        batch_size = params["batch_size"]
        shard_files, record_shard = list(files), None
        if input_context is not None:
            shard_files, record_shard = shard_plan(files, input_context.num_input_pipelines,
                                                   input_context.input_pipeline_id)
            print(f"input pipeline {input_context.input_pipeline_id}/{input_context.num_input_pipelines}: "
                  f"{len(shard_files)} file(s)" + (f", every {record_shard[0]}th record from "
                                                   f"{record_shard[1]}" if record_shard else "")
                  + f": {','.join(os.path.basename(f) for f in shard_files)}", flush=True)
        d = tf.data.Dataset.from_tensor_slices(tf.constant(shard_files))
        d = d.repeat()
        if is_training:
            d = d.shuffle(buffer_size=len(shard_files))
        d = d.interleave(_record_reader(record_shard), cycle_length=min(num_cpu_threads, len(shard_files)),
                         num_parallel_calls=tf.data.AUTOTUNE, deterministic=not is_training)
        if is_training:
            d = d.shuffle(buffer_size=1000)
        d = d.map(lambda r: decode_record(r, max_seq_length), num_parallel_calls=tf.data.AUTOTUNE)
        # Fixed batch shapes: the TPU needs them and the masking's top-k is simpler with them.
        d = d.batch(batch_size, drop_remainder=True)
        return d.prefetch(tf.data.AUTOTUNE)

    return input_fn


def _record_reader(record_shard):
    import tensorflow.compat.v1 as tf

    if record_shard is None:
        return tf.data.TFRecordDataset
    num_shards, shard_id = record_shard
    return lambda path: tf.data.TFRecordDataset(path).shard(num_shards, shard_id)
