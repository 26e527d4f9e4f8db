"""pretrain/tfrecords.py against TensorFlow's own writer, reader and tf.train.Example."""
import os
import subprocess
import sys

import numpy as np
import pytest

from pretrain import tfrecords
from util.errors import UserInputError

from .conftest import ROOT, make_examples

NAMES = ("input_ids", "input_mask", "segment_ids")


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def tf_example_bytes(tf, ids, mask, segments):
    feature = {name: tf.train.Feature(int64_list=tf.train.Int64List(value=list(map(int, values))))
               for name, values in zip(NAMES, (ids, mask, segments))}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


def test_serialized_examples_equal_tf_train_examples(tf):
    serialize = tfrecords.ExampleSerializer(NAMES)
    rows = make_examples(200, 128, 35000)
    rows.append(([2 ** 62, -1, 0], [1, 1, 0], [0, 0, 0]))  # 10-byte varints
    for row in rows:
        assert serialize(*row) == tf_example_bytes(tf, *row)


def test_written_files_equal_tf_record_writers_byte_for_byte(tf, tmp_path):
    records = [b"", b"x", os.urandom(1000), os.urandom(70000)] + [serialize for serialize in (
        tfrecords.ExampleSerializer(NAMES)(*row) for row in make_examples(20, 64, 500))]
    ours, theirs = str(tmp_path / "ours"), str(tmp_path / "theirs")
    with tfrecords.TFRecordWriter(ours) as writer:
        for record in records:
            writer.write(record)
    with tf.io.TFRecordWriter(theirs) as writer:
        for record in records:
            writer.write(record)
    assert open(ours, "rb").read() == open(theirs, "rb").read()
    assert [data for _, data in tfrecords.iter_records(theirs)] == records


def test_parsed_examples_equal_tf_parse(tf, tmp_path):
    path = str(tmp_path / "r")
    rows = make_examples(30, 64, 500, seed=1)
    with tf.io.TFRecordWriter(path) as writer:
        for row in rows:
            writer.write(tf_example_bytes(tf, *row))
    spec = {name: tf.io.FixedLenFeature([64], tf.int64) for name in NAMES}
    theirs = [tf.io.parse_single_example(r, spec) for r in tf.data.TFRecordDataset(path)]
    ours = [tfrecords.parse_int64_example(data, NAMES, 64, path, offset) for offset, data in tfrecords.iter_records(path)]
    assert len(ours) == len(theirs) == 30
    for mine, reference in zip(ours, theirs):
        for name in NAMES:
            np.testing.assert_array_equal(mine[name], reference[name].numpy())


def test_a_record_of_another_length_or_schema_is_named(tmp_path):
    data = tfrecords.ExampleSerializer(NAMES)(*make_examples(1, 64, 500)[0])
    with pytest.raises(UserInputError, match=r"^f: the record at 7 has 64 input_ids values, not max_seq_length 128;"):
        tfrecords.parse_int64_example(data, NAMES, 128, "f", 7)
    other = tfrecords.ExampleSerializer(("input_ids", "input_mask"))([1, 2], [1, 1])
    with pytest.raises(UserInputError, match=r"^f: the record at 0 has no int64 feature 'segment_ids'"):
        tfrecords.parse_int64_example(other, NAMES, 2, "f", 0)
    with pytest.raises(UserInputError, match=r"^f: the record at 0 is not a tf.train.Example"):
        tfrecords.parse_int64_example(b"\xff\xff\xff", NAMES, 2, "f", 0)


def flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))


# TF names the record's offset for a fault in the length, the data's (12 bytes on) for one in the data.
@pytest.mark.parametrize("where, reason", [
    (lambda second: second + 3, "corrupted record at {second}"),  # the length (its crc fails)
    (lambda second: second + 9, "corrupted record at {second}"),  # the length's crc
    (lambda second: second + 20, "corrupted record at {data}"),  # the data
    (lambda second: second + 12 + 100, "corrupted record at {data}"),  # the data's crc
])
def test_reading_checks_both_checksums_of_every_record_as_tf_does(tf, tmp_path, where, reason):
    path = str(tmp_path / "r")
    with tfrecords.TFRecordWriter(path) as writer:
        for _ in range(3):
            writer.write(b"a" * 100)
    second = 12 + 100 + 4
    flip(path, where(second))
    reason = reason.format(second=second, data=second + 12)
    with pytest.raises(UserInputError) as e:
        list(tfrecords.iter_records(path))
    assert str(e.value) == f"{path}: damaged TFRecord ({reason}); rebuild the dataset or copy the file again"
    assert e.value.offset == second
    with pytest.raises(tf.errors.DataLossError, match=reason):
        for _ in tf.data.TFRecordDataset(path):
            pass


@pytest.mark.parametrize("keep", [116 + 12, 116 + 50, 116 * 2 - 1])
def test_a_file_cut_short_in_a_records_data_is_a_truncated_record_as_in_tf(tf, tmp_path, keep):
    path = write_two_records(tmp_path)
    os.truncate(path, keep)
    with pytest.raises(tfrecords.DamagedRecordError, match=r"\(truncated record at 116\)"):
        list(tfrecords.iter_records(path))
    with pytest.raises(tf.errors.DataLossError, match=r"truncated record at 116"):
        for _ in tf.data.TFRecordDataset(path):
            pass


@pytest.mark.parametrize("keep, at", [(5, 0), (116 + 7, 116)])
def test_a_file_cut_short_in_a_records_length_is_refused_where_tf_drops_the_record(tf, tmp_path, keep, at):
    path = write_two_records(tmp_path)
    os.truncate(path, keep)
    with pytest.raises(tfrecords.DamagedRecordError, match=rf"\(truncated record at {at}\)"):
        list(tfrecords.iter_records(path))
    assert sum(1 for _ in tf.data.TFRecordDataset(path)) == at // 116  # TF: no error, a record fewer


def write_two_records(tmp_path):
    path = str(tmp_path / "r")
    with tfrecords.TFRecordWriter(path) as writer:
        writer.write(b"a" * 100)
        writer.write(b"b" * 100)
    return path


def test_crc_is_tensorflows_masked_crc32c(tf, tmp_path):
    path = str(tmp_path / "r")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(b"hello")
    raw = open(path, "rb").read()
    assert int.from_bytes(raw[8:12], "little") == tfrecords.masked_crc32c(raw[:8])
    assert int.from_bytes(raw[-4:], "little") == tfrecords.masked_crc32c(b"hello")


def test_a_gs_path_without_tensorflow_is_one_line():
    script = ("import sys\nsys.modules['tensorflow'] = None\n"
              "from pretrain import input_pipeline\n"
              "from util.errors import run_cli\n"
              "run_cli(lambda: input_pipeline.find_tfrecords('gs://bucket/data'))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr == ("error: gs://bucket/data/pretrain_data.tfrecord*: a gs:// path needs TensorFlow's "
                             "tf.io.gfile, and TensorFlow is not installed; copy the data to a local directory\n")
