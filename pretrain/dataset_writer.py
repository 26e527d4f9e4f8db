"""Writes pretraining examples as TFRecord shards, so a reader never sees a half dataset.

Shards are written under hidden temporary names and renamed to
``pretrain_data.tfrecord-<i>-of-<n>`` only once every shard is complete; ``stats.json``
is written after the renames, so its presence marks a finished dataset, and it records each
shard's size and record count (``manifest``) so that pretraining can tell a shard cut short
by an interrupted copy before it builds a graph (pretrain/damage_check.py). A new run first
removes every shard, temporary file and ``stats.json`` a previous (possibly killed) run
left in the output directory.

The records are written without TensorFlow (pretrain/tfrecords.py: protobuf and
google-crc32c), byte for byte what tf.train.Example and tf.io.TFRecordWriter write.
``record_io="tensorflow"`` writes through TensorFlow instead; tests/pretrain/
test_dataset_builder.py builds the same dataset both ways and compares the bytes.
"""
import contextlib
import glob
import os
import tempfile

from pretrain import tfrecords

SHARD_PREFIX = "pretrain_data.tfrecord"
STATS_NAME = "stats.json"
FEATURE_NAMES = ("input_ids", "input_mask", "segment_ids")
RECORD_IO = ("protobuf", "tensorflow")  # what serializes and frames the records


def shard_name(index, num_out_files):
    return f"{SHARD_PREFIX}-{index}-of-{num_out_files}"


def clear_output_dir(output_dir):
    """Remove what an earlier run wrote here (shards of any count, temporaries, stats.json).

    stats.json goes first: if this run dies part way, nothing is left that looks complete.
    """
    os.makedirs(output_dir, exist_ok=True)
    stale = [os.path.join(output_dir, STATS_NAME)]
    stale += glob.glob(os.path.join(glob.escape(output_dir), "." + STATS_NAME + ".*.tmp"))
    stale += glob.glob(os.path.join(glob.escape(output_dir), SHARD_PREFIX + "-*"))
    stale += glob.glob(os.path.join(glob.escape(output_dir), "." + SHARD_PREFIX + "-*.tmp"))
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def example_features(first_segment, second_segment, max_seq_length, cls_id, sep_id):
    """``[CLS] A [SEP] B [SEP]`` (or ``[CLS] A [SEP]``), zero-padded to max_seq_length."""
    input_ids = [cls_id] + first_segment + [sep_id]
    segment_ids = [0] * len(input_ids)
    if second_segment:
        input_ids += second_segment + [sep_id]
        segment_ids += [1] * (len(second_segment) + 1)
    padding = [0] * (max_seq_length - len(input_ids))
    input_mask = [1] * len(input_ids) + padding
    return input_ids + padding, input_mask, segment_ids + padding


def example_serializer(record_io="protobuf"):
    """A callable turning (input_ids, input_mask, segment_ids) into serialized tf.train.Example bytes."""
    if record_io == "protobuf":
        return tfrecords.ExampleSerializer(FEATURE_NAMES)
    return TFExampleSerializer()


class TFExampleSerializer:
    """The same through tf.train.Example, reusing one message."""

    def __init__(self):
        import tensorflow as tf

        self._example = tf.train.Example()
        features = self._example.features.feature
        self._lists = [features[name].int64_list.value for name in FEATURE_NAMES]

    def __call__(self, input_ids, input_mask, segment_ids):
        for values, new in zip(self._lists, (input_ids, input_mask, segment_ids)):
            values[:] = new
        return self._example.SerializeToString(deterministic=True)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


class ShardWriter:
    """Round-robins serialized examples over ``num_out_files`` temporary shards.

    ``commit()`` renames them into place; leaving the ``with`` block without a commit
    (an error, Ctrl-C) deletes them, so only a complete set ever carries the final names.
    After the commit, ``manifest`` is ``{shard name: {"bytes", "records"}}`` for stats.json.
    """

    def __init__(self, output_dir, num_out_files, record_io="protobuf"):
        if record_io == "tensorflow":
            import tensorflow as tf

            open_writer = tf.io.TFRecordWriter
        else:
            open_writer = tfrecords.TFRecordWriter
        self.num_written = 0
        self.manifest = None
        self._final = [os.path.join(output_dir, shard_name(i, num_out_files)) for i in range(num_out_files)]
        self._temp = []
        self._writers = []
        try:
            for path in self._final:
                fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                                           dir=output_dir)
                os.close(fd)
                self._temp.append(tmp)
                self._writers.append(open_writer(tmp))
        except BaseException:
            self.abort()
            raise

    def write(self, serialized):
        self._writers[self.num_written % len(self._writers)].write(serialized)
        self.num_written += 1

    def _close(self):
        for writer in self._writers:
            writer.close()
        self._writers = []

    def commit(self):
        self._close()
        num_shards = len(self._final)
        # Round-robin: shard i holds every num_shards-th example starting at i.
        records = [self.num_written // num_shards + (i < self.num_written % num_shards) for i in range(num_shards)]
        mode = 0o666 & ~_umask()  # mkstemp made them private; shards get plain-open() permissions
        for tmp, path in zip(self._temp, self._final):
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        self._temp = []
        self.manifest = {os.path.basename(path): {"bytes": os.path.getsize(path), "records": count}
                         for path, count in zip(self._final, records)}

    def abort(self):
        # On a full disk closing flushes, and fails: the temporaries must go all the same.
        for writer in self._writers:
            with contextlib.suppress(Exception):
                writer.close()
        self._writers = []
        for tmp in self._temp:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
        self._temp = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.abort()  # no-op after commit()
        return False
