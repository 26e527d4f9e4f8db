"""A shard cut short or damaged is named in one line: before the graph from what stats.json
recorded (or the last record's framing for older datasets), during training from the
DataLossError, with the last checkpoint kept so a rerun resumes."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import tensorflow.compat.v1 as tf

from configure_pretraining import PretrainingConfig
from pretrain import dataset_writer, input_pipeline, damage_check, training
from util.errors import UserInputError

from .conftest import ROOT, make_dataset, tiny_hparams

SHARD0 = "pretrain_data.tfrecord-0-of-2"


def with_manifest(data_dir):
    """Add the per-shard entry the writer now records to a conftest dataset's stats.json."""
    stats_path = os.path.join(data_dir, "stats.json")
    with open(stats_path) as f:
        stats = json.load(f)
    files = input_pipeline.find_tfrecords(data_dir)
    counts = [sum(1 for _ in tf.io.tf_record_iterator(p)) for p in files]
    stats["shards"] = damage_check.shard_manifest(files, counts)
    with open(stats_path, "w") as f:
        json.dump(stats, f)
    return data_dir


def cut_short(path, keep_bytes=None):
    size = os.path.getsize(path)
    os.truncate(path, size - 37 if keep_bytes is None else keep_bytes)


def prepare(data_dir):
    return training.prepare(PretrainingConfig(os.path.join(str(data_dir), "m"), str(data_dir), **tiny_hparams()))


@pytest.fixture
def data(tmp_path, tiny_data):
    target = tmp_path / "data"
    shutil.copytree(tiny_data, target)
    return str(target)


def test_writer_records_each_shards_size_and_record_count(tmp_path):
    with dataset_writer.ShardWriter(str(tmp_path), 3) as writer:
        for i in range(7):
            writer.write(b"x" * (i + 1))
        writer.commit()
    names = [dataset_writer.shard_name(i, 3) for i in range(3)]
    assert sorted(writer.manifest) == names
    for name in names:
        path = str(tmp_path / name)
        assert writer.manifest[name] == {"bytes": os.path.getsize(path),
                                         "records": sum(1 for _ in tf.io.tf_record_iterator(path))}
    assert [writer.manifest[n]["records"] for n in names] == [3, 2, 2]


def test_shards_are_readable_by_others_like_any_output(tmp_path):
    old = os.umask(0o022)
    try:
        with dataset_writer.ShardWriter(str(tmp_path), 1) as writer:
            writer.write(b"x")
            writer.commit()
    finally:
        os.umask(old)
    assert os.stat(tmp_path / dataset_writer.shard_name(0, 1)).st_mode & 0o777 == 0o644


def test_intact_dataset_passes_with_and_without_a_manifest(data):
    prepare(data)  # older dataset: no "shards" in stats.json
    prepare(with_manifest(data))


def test_shard_cut_short_is_refused_against_its_recorded_size(data):
    with_manifest(data)
    shard = os.path.join(data, SHARD0)
    recorded = os.path.getsize(shard)
    cut_short(shard)
    with pytest.raises(UserInputError) as e:
        prepare(data)
    assert str(e.value).startswith(f"{shard}: {recorded - 37} bytes but {os.path.join(data, 'stats.json')} "
                                   f"recorded {recorded}")
    assert "\n" not in str(e.value)


def test_missing_and_foreign_shards_are_refused(data):
    with_manifest(data)
    shard = os.path.join(data, SHARD0)
    os.rename(shard, os.path.join(data, "pretrain_data.tfrecord-0-of-3"))
    with pytest.raises(UserInputError, match=rf"^{shard}: missing, but .*stats.json lists it"):
        prepare(data)
    os.rename(os.path.join(data, "pretrain_data.tfrecord-0-of-3"), shard)
    shutil.copy(shard, os.path.join(data, "pretrain_data.tfrecord-5-of-9"))
    with pytest.raises(UserInputError, match=r"tfrecord-5-of-9: not one of the shards .*stats.json lists"):
        prepare(data)


@pytest.mark.parametrize("keep", [None, 1, 20, 200])
def test_older_dataset_cut_short_is_found_from_the_last_record(data, keep):
    shard = os.path.join(data, SHARD0)
    cut_short(shard, keep)
    with pytest.raises(UserInputError, match=rf"^{shard}: damaged TFRecord, the last record is cut short"):
        prepare(data)


def test_tail_check_accepts_empty_and_single_record_shards(tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    one = str(tmp_path / "one")
    with tf.io.TFRecordWriter(one) as writer:
        writer.write(b"\x00" * 300)
    assert damage_check.last_record_is_complete(str(empty), 64)
    assert damage_check.last_record_is_complete(one, 64)
    cut_short(one, os.path.getsize(one) - 1)
    assert not damage_check.last_record_is_complete(one, 64)


def test_masked_crc_matches_tensorflows_framing(tmp_path):
    path = str(tmp_path / "r")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(b"hello")
    raw = open(path, "rb").read()
    assert int.from_bytes(raw[8:12], "little") == damage_check.masked_crc32c(raw[:8])
    assert int.from_bytes(raw[-4:], "little") == damage_check.masked_crc32c(b"hello")


def test_run_pretraining_names_the_cut_short_file_in_one_line(data):
    with_manifest(data)
    shard = os.path.join(data, SHARD0)
    cut_short(shard)
    result = subprocess.run([sys.executable, "run_pretraining.py", "--data_dir", data, "--model_name",
                             os.path.join(data, "m"), "--hparams", json.dumps(tiny_hparams())],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {shard}: ")
    assert "Traceback" not in result.stderr
    assert not os.path.exists(os.path.join(data, "m", "checkpoint"))  # refused before any graph


def corrupt_middle(path):
    """Flip bytes inside a record: the size and the last record stay right, the checksum fails."""
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        chunk = f.read(8)
        f.seek(-8, 1)
        f.write(bytes(b ^ 0xFF for b in chunk))


@pytest.mark.slow  # three tiny pretraining runs: about 30 s alone, more on a busy machine
def test_data_loss_during_training_names_the_file_and_keeps_the_checkpoint(tmp_path):
    data = make_dataset(str(tmp_path / "data"), num_examples=64)
    with_manifest(data)
    model_dir = str(tmp_path / "model")
    hparams = tiny_hparams(num_train_steps=4, iterations_per_loop=2, save_checkpoints_steps=4)
    training.train_or_eval(PretrainingConfig(model_dir, data, **hparams))
    assert tf.train.latest_checkpoint(model_dir).endswith("-4")
    shard = os.path.join(data, SHARD0)
    good = open(shard, "rb").read()
    corrupt_middle(shard)
    prepare(data)  # the cheap checks cannot see this one
    with pytest.raises(UserInputError) as e:
        training.train_or_eval(PretrainingConfig(model_dir, data, **dict(hparams, num_train_steps=8)))
    message = str(e.value)
    assert message.startswith(f"{shard}: damaged TFRecord (corrupted record at ") and "\n" not in message
    assert "model.ckpt-4 is kept" in message
    assert tf.train.latest_checkpoint(model_dir).endswith("-4")
    assert tf.train.load_variable(model_dir, "global_step") == 4
    with open(shard, "wb") as f:  # the file rebuilt: the same command resumes
        f.write(good)
    training.train_or_eval(PretrainingConfig(model_dir, data, **dict(hparams, num_train_steps=8)))
    assert tf.train.load_variable(model_dir, "global_step") == 8


def test_restore_from_a_checkpoint_cut_short_names_the_checkpoint(tmp_path):
    """An interrupted copy of the model dir: restoring fails with TF's OutOfRangeError."""
    model_dir = str(tmp_path / "model")
    with tf.Graph().as_default():
        tf.train.get_or_create_global_step()
        tf.get_variable("w", shape=[64, 64])
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            prefix = tf.train.Saver().save(session, os.path.join(model_dir, "model.ckpt"), global_step=3)
    data = prefix + ".data-00000-of-00001"
    with open(data, "r+b") as f:
        f.truncate(os.path.getsize(data) // 2)
    with pytest.raises(UserInputError) as e:
        with damage_check.naming_damaged_files([], 32, model_dir):
            raise tf.errors.OutOfRangeError(None, None, "Read less bytes than requested")
    message = str(e.value)
    assert message.startswith(f"{prefix}: damaged checkpoint (") and "\n" not in message
    # An error no checkpoint explains is left as it is.
    with pytest.raises(tf.errors.OutOfRangeError):
        with damage_check.naming_damaged_files([], 32, str(tmp_path / "none")):
            raise tf.errors.OutOfRangeError(None, None, "end of something")


def flip_64_bytes(path):
    """As the fault sweep did: 64 bytes inside a record flipped, the file's size unchanged."""
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        chunk = f.read(64)
        f.seek(-64, 1)
        f.write(bytes(b ^ 0xFF for b in chunk))


def test_verify_records_names_a_damaged_shard_before_training(data, capsys):
    shard = os.path.join(with_manifest(data), SHARD0)
    config = PretrainingConfig(os.path.join(data, "m"), data, **tiny_hparams(verify_records=True))
    training.prepare(config)
    assert capsys.readouterr().out.splitlines()[-1].startswith("verify_records: every record of 2 shard(s), ")
    flip_64_bytes(shard)
    prepare(data)  # the start check every run makes (sizes) cannot see this one
    with pytest.raises(UserInputError) as e:
        training.prepare(config)
    assert str(e.value).startswith(f"{shard}: damaged TFRecord (corrupted record at ")
    assert str(e.value).endswith("; rebuild the dataset or copy the file again")
    assert not os.path.exists(os.path.join(data, "m", "checkpoint"))
