"""Cheap integrity checks of the pretraining TFRecords and checkpoints, so damage is named in one line.

A TFRecord is a chain of ``length (uint64) | masked crc32c of length | data | masked crc32c
of data``. Reading a file end to end is the only complete check, and it is far too slow to
run before every training on a large dataset, so before the graph is built we only compare
each shard with what ``stats.json`` recorded when it was written (size, a stat call), and
for shards with no record (datasets built before the writer recorded them) check that a
valid record ends exactly at the end of the file (one read of the file's tail): a copy
interrupted mid-file fails both. Damage these miss (bytes flipped in the middle) surfaces
as TensorFlow's DataLossError during training (the TF backend; the torch backend's reader
checks every record itself); ``naming_damaged_files`` then reads the files in full to say
which one it was.

The shard checks serve both backends and import no TensorFlow (pretrain/tfrecords.py reads
the framing); only the TF backend's checkpoint and DataLossError handling imports it.
"""
import contextlib
import os
import struct
import time

import numpy as np

from pretrain.tfrecords import (FOOTER_BYTES, HEADER_BYTES, DamagedRecordError, file_size, iter_records,
                                masked_crc32c, open_file)
from util.errors import UserInputError

MIN_TAIL_WINDOW = 64 * 1024


def max_record_bytes(max_seq_length):
    """A bound on one serialized example of our schema: three int64 lists of max_seq_length
    varints (at most 10 bytes each) plus feature names and framing."""
    return 3 * (10 * max_seq_length + 64) + 64


def last_record_is_complete(path, max_seq_length):
    """Whether a record whose length and data checksums hold ends exactly at the end of ``path``.

    An empty file is a valid shard with no records. Only the tail is read: the start of the
    last record is found by trying every offset in the window where a record that long
    would end at the end of the file.
    """
    size = file_size(path)
    if size == 0:
        return True
    if size < HEADER_BYTES + FOOTER_BYTES:
        return False
    window = min(size, max(MIN_TAIL_WINDOW, 2 * max_record_bytes(max_seq_length)))
    with open_file(path, "rb") as f:
        f.seek(size - window)
        tail = f.read(window)
    count = len(tail) - HEADER_BYTES - FOOTER_BYTES + 1
    # The uint64 at every offset of the window at once (an unaligned, overlapping view).
    lengths = np.ndarray((count,), dtype="<u8", buffer=tail, strides=(1,))
    starts = np.arange(count, dtype=np.uint64)
    ends_here = lengths == np.uint64(len(tail) - HEADER_BYTES - FOOTER_BYTES) - starts
    for start in np.flatnonzero(ends_here)[::-1]:
        start = int(start)
        length_crc, = struct.unpack_from("<I", tail, start + 8)
        if masked_crc32c(tail[start:start + 8]) != length_crc:
            continue
        data = tail[start + HEADER_BYTES:len(tail) - FOOTER_BYTES]
        data_crc, = struct.unpack_from("<I", tail, len(tail) - FOOTER_BYTES)
        if masked_crc32c(data) == data_crc:
            return True
    return False


def shard_manifest(paths, record_counts):
    """What stats.json records per shard: ``{name: {"bytes", "records"}}``."""
    return {os.path.basename(p): {"bytes": os.path.getsize(p), "records": n} for p, n in zip(paths, record_counts)}


def check_shards(files, stats, stats_path, max_seq_length):
    """Refuse shards that disagree with stats.json, before any graph is built (one line each).

    Shards beside stats.json are compared with its ``shards`` entry: a listed shard must be
    there with the recorded size, and no unlisted shard may be mixed in. Shards with no
    entry (older datasets, or files from another directory) get the tail check instead.
    """
    recorded = (stats or {}).get("shards") or {}
    stats_dir = os.path.dirname(stats_path)
    here = {os.path.basename(f): f for f in files if os.path.dirname(f) == stats_dir}
    rebuild = "copy it again or rebuild the dataset with build_pretraining_dataset.py"
    missing = sorted(set(recorded) - set(here))
    if missing:
        raise UserInputError(f"{os.path.join(stats_dir, missing[0])}: missing, but {stats_path} lists it; {rebuild}")
    for path in files:
        entry = recorded.get(os.path.basename(path)) if path in here.values() else None
        if recorded and path in here.values() and entry is None:
            raise UserInputError(f"{path}: not one of the shards {stats_path} lists (left from another "
                                 "build?); remove it or rebuild the dataset")
        if entry is not None:
            size = file_size(path)
            if size != entry["bytes"]:
                raise UserInputError(f"{path}: {size} bytes but {stats_path} recorded {entry['bytes']} "
                                     f"(cut short by an interrupted copy?); {rebuild}")
        elif not last_record_is_complete(path, max_seq_length):
            raise UserInputError(f"{path}: damaged TFRecord, the last record is cut short "
                                 f"(an interrupted copy?); {rebuild}")


def find_damaged(files, max_seq_length):
    """(path, reason) of the first file that does not read to its end, or None. Slow: reads everything."""
    for path in files:
        if not last_record_is_complete(path, max_seq_length):
            return path, "the last record is cut short"
    for path in files:
        try:
            for _ in iter_records(path):
                pass
        except DamagedRecordError as e:  # TF's wording, e.g. "corrupted record at N"
            return path, e.reason
    return None


def verify_records(files, max_seq_length, printer=None):
    """The ``verify_records`` hparam: every record's checksums, before training, one line naming
    the first damaged file. Off by default: it reads the whole dataset, minutes for a corpus of
    tens of GB (bench/bench_record_check.py), where the start check is a stat per shard and a
    damaged record met in training stops it at the last checkpoint anyway."""
    printer = printer or (lambda line: print(line, flush=True))
    start = time.perf_counter()
    damaged = find_damaged(files, max_seq_length)
    if damaged is not None:
        path, reason = damaged
        raise UserInputError(f"{path}: damaged TFRecord ({reason}); rebuild the dataset or copy the file again")
    size = sum(file_size(f) for f in files)
    printer(f"verify_records: every record of {len(files)} shard(s), {size / 1e6:,.1f} MB, intact "
            f"({time.perf_counter() - start:.1f}s)")


def unreadable_checkpoint(model_dir):
    """(checkpoint, reason) when the newest checkpoint in ``model_dir`` does not read in full,
    or None. Slow (reads every variable), so only called once training has failed."""
    import tensorflow.compat.v1 as tf

    last = tf.train.latest_checkpoint(model_dir)
    if not last:
        return None
    try:
        reader = tf.train.load_checkpoint(last)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, IndexError, ValueError) as e:
        return last, str(e).splitlines()[0]
    return None


@contextlib.contextmanager
def naming_damaged_files(files, max_seq_length, model_dir):
    """Turn a DataLossError while reading ``files`` into one line naming the damaged file.

    Training stops at the failing step without a final save (the Estimator saves only on a
    clean exit), so the newest checkpoint is the last good one and a rerun resumes from it.
    A checkpoint cut short (an interrupted copy of the model dir) fails the restore with an
    OutOfRangeError or DataLossError: that is named too. Anything else is left as it is.
    """
    import tensorflow.compat.v1 as tf

    try:
        yield
    except (tf.errors.DataLossError, tf.errors.OutOfRangeError) as e:
        damaged = find_damaged(files, max_seq_length) if isinstance(e, tf.errors.DataLossError) else None
        if damaged is None:
            checkpoint = unreadable_checkpoint(model_dir)
            if checkpoint is None:
                raise
            path, reason = checkpoint
            state = os.path.join(model_dir, "checkpoint")
            raise UserInputError(f"{path}: damaged checkpoint ({reason}); copy its files again, or remove "
                                 f"{os.path.basename(path)}.* and its lines in {state} to resume from the one "
                                 "before") from e
        path, reason = damaged
        last = tf.train.latest_checkpoint(model_dir)
        kept = f"the last checkpoint {os.path.basename(last)} is kept" if last else "no checkpoint was written"
        raise UserInputError(f"{path}: damaged TFRecord ({reason}); training stopped, {kept}: rebuild or copy "
                             "the file again and rerun the same command to resume") from e
