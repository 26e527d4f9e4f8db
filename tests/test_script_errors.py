"""A user's mistake in a script's arguments (a directory where a file goes, a file in the way
of a directory, no permission) ends in one UserInputError line naming the path, and before
the script's long work rather than after it."""
import os
import subprocess
import sys
import tempfile

import pytest

import build_vocab
import preprocess
import run_finetune
from configure_pretraining import load_hparams
from util import files
from util.errors import UserInputError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def corpus(tmp_path):
    directory = tmp_path / "corpus"
    directory.mkdir()
    (directory / "a.txt").write_text("안녕하세요. 반갑습니다.\n", encoding="utf-8")
    return str(directory)


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "a_file.txt"
    path.write_text("x")
    return str(path)


def test_preprocess_output_file_that_is_a_directory_fails_before_cleaning(tmp_path, corpus, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr("util.preprocessing._cleaned_batches", lambda *a: pytest.fail("cleaned anyway"))
    with pytest.raises(UserInputError, match=rf"^{out} is a directory; give the name of a file to write$"):
        preprocess.main(["--corpus_dir", corpus, "--output_file", str(out), "--quiet"])
    assert sorted(os.listdir(tmp_path)) == ["corpus", "out"]  # no temporary left beside it


def test_preprocess_output_under_a_file_names_the_file(corpus, a_file):
    with pytest.raises(UserInputError, match=rf"^output directory {a_file}/new cannot be created: {a_file} is a file$"):
        preprocess.main(["--corpus_dir", corpus, "--output_file", os.path.join(a_file, "new", "out.txt"),
                         "--quiet"])


def test_atomic_write_creates_parents_and_names_a_permission_error(tmp_path, monkeypatch):
    with files.atomic_write(tmp_path / "some" / "new" / "dir" / "out.txt") as f:
        f.write("ok")
    assert (tmp_path / "some" / "new" / "dir" / "out.txt").read_text() == "ok"

    def denied(*args, **kwargs):  # the tests may run as root, for whom chmod denies nothing
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(UserInputError, match=rf"out.txt: cannot write in {tmp_path} \(Permission denied\)$"):
        with files.atomic_write(tmp_path / "out.txt"):
            pass
    monkeypatch.setattr(os, "makedirs", denied)
    with pytest.raises(UserInputError, match=rf"^output directory {tmp_path}/new: cannot create it \(Permission denied\)$"):
        with files.atomic_write(tmp_path / "new" / "out.txt"):
            pass


def test_directory_outputs_under_a_file_name_the_file(a_file):
    # pytorch_convert.py and run_finetune.py build their output directories this way.
    with pytest.raises(UserInputError, match=rf"^output directory {a_file} exists and is not a directory$"):
        files.temp_dir_beside(os.path.join(a_file, "discriminator"))


def test_read_json_of_a_directory_is_one_line(tmp_path):
    with pytest.raises(UserInputError, match=rf"^hparams file {tmp_path} is a directory, not a JSON file$"):
        files.read_json(str(tmp_path), "hparams file")


def test_build_vocab_output_dir_blocked_by_a_file_fails_before_training(a_file, monkeypatch):
    monkeypatch.setattr(build_vocab, "build_vocab", lambda *a: pytest.fail("trained anyway"))
    with pytest.raises(UserInputError, match=rf"^--output_dir {a_file} exists and is not a directory$"):
        build_vocab.main(["--corpus", a_file, "--output_dir", a_file])
    with pytest.raises(UserInputError, match=rf"cannot be created: {a_file} is a file$"):
        build_vocab.main(["--corpus", a_file, "--output_dir", os.path.join(a_file, "vocab")])


def test_output_dir_without_write_permission_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(UserInputError, match=rf"^model dir {tmp_path}/m: cannot write in {tmp_path} \(Permission denied\)$"):
        files.check_dir_can_be_made(str(tmp_path / "m"), "model dir")


def test_hparams_that_is_a_directory_or_a_missing_file(tmp_path):
    with pytest.raises(UserInputError, match=rf"^--hparams {tmp_path} is a directory"):
        load_hparams(str(tmp_path))
    # Not parsed as JSON ("malformed JSON at column 1" said nothing about the typo'd name).
    with pytest.raises(UserInputError, match=r"^--hparams conf/pretrain/tiny\.jsn: no such file, and not a JSON dict"):
        load_hparams("conf/pretrain/tiny.jsn")
    assert load_hparams('  {"learning_rate": 1e-4}')[0] == {"learning_rate": 1e-4}


def test_run_finetune_config_file_that_is_a_directory(tmp_path):
    with pytest.raises(UserInputError, match=rf"^--config_file {tmp_path} is a directory; give a YAML file"):
        run_finetune.main(["--config_file", str(tmp_path)])


def test_run_pretraining_model_name_that_is_a_file_is_one_line(tmp_path, a_file):
    result = subprocess.run([sys.executable, "run_pretraining.py", "--data_dir", str(tmp_path),
                             "--model_name", a_file], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"error: model dir {a_file} exists and is not a directory"]


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_run_pretraining_without_tfrecords_leaves_no_model_dir(tmp_path, backend):
    if backend == "tf":
        pytest.importorskip("tensorflow")
    model_dir = tmp_path / "models" / "m"
    result = subprocess.run([sys.executable, "run_pretraining.py", "--backend", backend, "--data_dir", str(tmp_path),
                             "--model_name", str(model_dir)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "no TFRecords found" in result.stderr, result.stderr
    assert not (tmp_path / "models").exists()
