"""A full disk: one line naming the path and the space left, nothing half-written.

The real cases need a full filesystem: a 2 MB tmpfs, which only root can mount; they are
skipped elsewhere.
"""
import errno
import os
import subprocess
import sys

import pytest

from util.disk_space import is_disk_full, reporting_full_disk
from util.errors import UserInputError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def full_disk(mount_tmpfs):
    """A 2 MB tmpfs, filled but for 64 KB by a file that the test may not touch."""
    mount = mount_tmpfs("2m")
    with open(mount / "filler", "wb") as f:
        f.write(b"\0" * (2 * 1024 * 1024 - 64 * 1024))
    return mount


def test_an_enospc_error_becomes_one_line_naming_the_path(tmp_path):
    with pytest.raises(UserInputError, match=rf"out {tmp_path}: the disk is full \(.* left\)"):
        with reporting_full_disk(tmp_path, "out"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with pytest.raises(OSError):  # other errors pass through untouched
        with reporting_full_disk(tmp_path, "out"):
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))


def test_tensorflows_full_disk_error_is_recognised(full_disk):
    import tensorflow as tf

    with pytest.raises(Exception) as caught:
        with tf.io.TFRecordWriter(str(full_disk / "data.tfrecord")) as writer:
            for _ in range(200):
                writer.write(b"x" * 4096)
    assert is_disk_full(caught.value), repr(caught.value)


def test_preprocess_on_a_full_disk_is_one_line_and_leaves_no_file(full_disk, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    with open(corpus / "a.txt", "w", encoding="utf-8") as f:
        f.writelines(f"오늘 {i}번째 리뷰는 영화가 정말 재미있었다는 내용입니다.\n\n" for i in range(3000))
    output = full_disk / "clean.txt"
    result = subprocess.run([sys.executable, "preprocess.py", "--corpus_dir", str(corpus), "--output_file",
                             str(output), "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--output_file {output}: the disk is full" in lines[0], result.stderr
    assert sorted(os.listdir(full_disk)) == ["filler"]


def test_the_dataset_builder_on_a_full_disk_is_one_line_and_leaves_no_shard(full_disk, tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "tests", "pretrain"))
    from conftest import write_vocab  # tests/pretrain's tiny vocab: [PAD].. then w0..w119

    write_vocab(str(tmp_path / "vocab"))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    with open(corpus / "a.txt", "w", encoding="utf-8") as f:
        f.writelines(" ".join(f"w{(i * 7 + j) % 120}" for j in range(30)) + "\n\n" for i in range(3000))
    output = full_disk / "tfrecords"
    result = subprocess.run([sys.executable, "build_pretraining_dataset.py", "--corpus_dir", str(corpus),
                             "--vocab_file", str(tmp_path / "vocab"), "--output_dir", str(output),
                             "--max_seq_length", "64", "--num_out_files", "2", "--no_progress"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith(("error", "Traceback"))]
    assert len(errors) == 1 and f"--output_dir {output}: the disk is full" in errors[0], result.stderr[-2000:]
    assert not output.exists()  # the directory the builder made goes too (util/dir_lock.hold)
