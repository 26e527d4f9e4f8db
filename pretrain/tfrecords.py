"""TFRecord files and the tf.train.Example schema, read and written without TensorFlow.

A TFRecord file is a chain of ``length (uint64 LE) | masked crc32c of length | data |
masked crc32c of data``. The framing is a few lines of ``struct``; what matters is the
checksum and the Example encoding, and for both a maintained library does the work:

- **crc32c: google-crc32c** (Google's C library, Apache-2.0; 1.8.0 has wheels for CPython 3.9-3.13).
  It computes TF's checksum at 3.7 GB per CPU-second on 1 KB records on this machine's CPU
  (2-core AMD EPYC with avx512_bf16; bench/bench_tfrecords.py), about 400 times
  tensorboard's pure-Python crc32c. ``crc32c`` (ICRAR, LGPL-2.1) is as fast.
- **Example encoding: protobuf** with the schema of tensorflow/core/example declared here
  in a private descriptor pool. The message class is built by protobuf's own
  ``message_factory``, and ``SerializeToString(deterministic=True)`` gives the bytes that
  tf.train.Example gives. The schema lives in its own pool because a second
  ``tensorflow.Example`` in protobuf's default pool fails to import beside TensorFlow.
- Rejected: the ``tfrecord`` package (1.14.6). Its reader checks neither crc, so a damaged
  record is read as if it were intact. Its example_pb2 registers ``tensorflow.Example`` in
  the default pool, and it cannot be imported in the same process as TensorFlow ("duplicate
  symbol 'tensorflow.BytesList'"), in either order. tensorboard's RecordWriter and reader
  compute the crc in pure Python, and tensorboard 2.15 ships no example_pb2.

Reading checks every record's length and data checksums as tf.data does. A damaged record
raises ``DamagedRecordError``, a one-line UserInputError naming the file and the record's
offset, with TF's wording ("corrupted record at N", "truncated record at N").

Local paths use plain file I/O. ``gs://`` and other ``scheme://`` paths go through
``tf.io.gfile``, imported only when such a path is used; without TensorFlow that is a
one-line error.
"""
import glob as _glob
import os
import struct

import google_crc32c
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from util.errors import UserInputError

HEADER_BYTES = 12  # uint64 length + its masked crc
FOOTER_BYTES = 4  # masked crc of the data
_MASK_DELTA = 0xA282EAD8
_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")


def masked_crc32c(data):
    """TFRecord's checksum: crc32c (Castagnoli), rotated right by 15 bits and offset."""
    crc = google_crc32c.value(bytes(data))
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(data):
    """One record as TF's writer lays it out."""
    header = _LENGTH.pack(len(data))
    return header + _CRC.pack(masked_crc32c(header)) + data + _CRC.pack(masked_crc32c(data))


# --- paths: local, or scheme:// through tf.io.gfile ---------------------------------------

def is_remote(path):
    return "://" in str(path)


def _gfile(path):
    try:
        import tensorflow as tf
    except ImportError:
        raise UserInputError(f"{path}: a {str(path).split('://')[0]}:// path needs TensorFlow's tf.io.gfile, "
                             "and TensorFlow is not installed; copy the data to a local directory") from None
    return tf.io.gfile


def glob(pattern):
    if is_remote(pattern):
        return _gfile(pattern).glob(pattern)
    return _glob.glob(pattern)


def exists(path):
    return _gfile(path).exists(path) if is_remote(path) else os.path.exists(path)


def file_size(path):
    return _gfile(path).stat(path).length if is_remote(path) else os.path.getsize(path)


def open_file(path, mode="rb"):
    return _gfile(path).GFile(path, mode) if is_remote(path) else open(path, mode)


# --- reading ----------------------------------------------------------------------------

class DamagedRecordError(UserInputError):
    """A record whose framing or checksums do not hold. ``path`` and ``reason`` let a caller
    (the training loop) say more, e.g. which checkpoint is kept."""

    def __init__(self, path, reason, offset):
        self.path, self.reason, self.offset = path, reason, offset
        super().__init__(f"{path}: damaged TFRecord ({reason}); rebuild the dataset or copy the file again")


def read_record(f, path, offset):
    """The data of the record at ``offset`` of the open file ``f`` (positioned there) and the
    offset of the next record; ``(None, offset)`` at a clean end of file. Like TF's reader, a
    checksum fault in the data names the data's offset, any other fault the record's. A file
    ending inside a record's length is an error here; TF's reader takes it for the end of the
    file and drops the record without a word."""
    header = f.read(HEADER_BYTES)
    if not header:
        return None, offset
    if len(header) < HEADER_BYTES:
        raise DamagedRecordError(path, f"truncated record at {offset}", offset)
    length, = _LENGTH.unpack_from(header)
    if _CRC.unpack_from(header, 8)[0] != masked_crc32c(header[:8]):
        raise DamagedRecordError(path, f"corrupted record at {offset}", offset)
    body = f.read(length + FOOTER_BYTES)
    if len(body) < length + FOOTER_BYTES:
        raise DamagedRecordError(path, f"truncated record at {offset}", offset)
    data = body[:length]
    if _CRC.unpack_from(body, length)[0] != masked_crc32c(data):
        raise DamagedRecordError(path, f"corrupted record at {offset + HEADER_BYTES}", offset)
    return data, offset + HEADER_BYTES + length + FOOTER_BYTES


def iter_records(path, start=0):
    """(offset, data) of every record of ``path`` from byte ``start``, checksums verified."""
    with open_file(path) as f:
        if start:
            f.seek(start)
        offset = start
        while True:
            data, next_offset = read_record(f, path, offset)
            if data is None:
                return
            yield offset, data
            offset = next_offset


def read_record_at(path, offset):
    with open_file(path) as f:
        f.seek(offset)
        data, _ = read_record(f, path, offset)
    if data is None:
        raise DamagedRecordError(path, f"no record at {offset}, the file ends there", offset)
    return data


def count_records(path):
    return sum(1 for _ in iter_records(path))


# --- writing ----------------------------------------------------------------------------

class TFRecordWriter:
    """Writes framed records to ``path``; the bytes equal tf.io.TFRecordWriter's."""

    def __init__(self, path):
        self._file = open_file(path, "wb")

    def write(self, data):
        self._file.write(frame(data))

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# --- the tf.train.Example schema (tensorflow/core/example/{example,feature}.proto) -------

def _example_classes():
    F = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="dialog_koelectra/example.proto",
                                               package="dialog_koelectra.tfrecord", syntax="proto3")
    pkg = "." + proto.package

    def message(name, *fields):
        m = proto.message_type.add(name=name)
        for field in fields:
            m.field.add(**field)
        return m

    repeated = F.LABEL_REPEATED
    message("BytesList", dict(name="value", number=1, label=repeated, type=F.TYPE_BYTES))
    message("FloatList", dict(name="value", number=1, label=repeated, type=F.TYPE_FLOAT))
    message("Int64List", dict(name="value", number=1, label=repeated, type=F.TYPE_INT64))
    feature = message("Feature", *(dict(name=name, number=number, label=F.LABEL_OPTIONAL, type=F.TYPE_MESSAGE,
                                        type_name=f"{pkg}.{kind}", oneof_index=0)
                                   for number, (name, kind) in enumerate(
                                       [("bytes_list", "BytesList"), ("float_list", "FloatList"),
                                        ("int64_list", "Int64List")], start=1)))
    feature.oneof_decl.add(name="kind")
    features = message("Features", dict(name="feature", number=1, label=repeated, type=F.TYPE_MESSAGE,
                                        type_name=f"{pkg}.Features.FeatureEntry"))
    entry = features.nested_type.add(name="FeatureEntry")
    entry.field.add(name="key", number=1, label=F.LABEL_OPTIONAL, type=F.TYPE_STRING)
    entry.field.add(name="value", number=2, label=F.LABEL_OPTIONAL, type=F.TYPE_MESSAGE, type_name=f"{pkg}.Feature")
    entry.options.map_entry = True
    message("Example", dict(name="features", number=1, label=F.LABEL_OPTIONAL, type=F.TYPE_MESSAGE,
                            type_name=f"{pkg}.Features"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{proto.package}.Example"))


Example = _example_classes()


class ExampleSerializer:
    """Int64 feature lists to serialized tf.train.Example bytes, reusing one message."""

    def __init__(self, feature_names):
        self._example = Example()
        features = self._example.features.feature
        self._lists = [features[name].int64_list.value for name in feature_names]

    def __call__(self, *values):
        for target, new in zip(self._lists, values):
            target[:] = new
        return self._example.SerializeToString(deterministic=True)


def parse_int64_example(data, feature_names, length, path="", offset=0):
    """The int64 features of one serialized Example as numpy arrays of ``length``; a record
    of another schema is a one-line error naming the file and offset."""
    example = Example()
    try:
        example.ParseFromString(data)
    except Exception as e:  # protobuf's DecodeError; the message names nothing useful
        raise UserInputError(f"{path}: the record at {offset} is not a tf.train.Example ({e})") from None
    out = {}
    features = example.features.feature
    for name in feature_names:
        if name not in features or features[name].WhichOneof("kind") != "int64_list":
            raise UserInputError(f"{path}: the record at {offset} has no int64 feature {name!r}; "
                                 "build the dataset with build_pretraining_dataset.py")
        values = np.array(features[name].int64_list.value, dtype=np.int64)
        if values.shape != (length,):
            raise UserInputError(f"{path}: the record at {offset} has {len(values)} {name} values, not "
                                 f"max_seq_length {length}; the dataset was built with another max_seq_length")
        out[name] = values
    return out
