"""A CRLF copy of a vocab is the same vocab: the dataset builder writes the same shards with it,
and pretraining accepts a dataset built with either copy (the issue's trial, end to end on the
bundled sample). A dataset whose stats.json holds the sha256 of the vocab file's bytes, as
written before the digest counted tokens, is still accepted with that very file."""
import hashlib
import json
import os
import shutil

import pytest

from configure_pretraining import PretrainingConfig
from pretrain import training
from pretrain.dataset_builder import DatasetOptions, build_dataset
from util.errors import UserInputError

from .conftest import tiny_hparams


def crlf_copy(vocab_dir, directory):
    shutil.copytree(vocab_dir, directory)
    path = os.path.join(directory, "vocab.txt")
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data.replace(b"\n", b"\r\n"))
    return str(directory)


def build(corpus_file, vocab, out):
    build_dataset(DatasetOptions(corpus_dir=os.path.dirname(corpus_file), vocab_file=vocab, output_dir=str(out),
                                 max_seq_length=64, num_out_files=2, progress=False))
    return str(out)


def shards(directory):
    names = sorted(n for n in os.listdir(directory) if n.startswith("pretrain_data.tfrecord"))
    return {n: open(os.path.join(directory, n), "rb").read() for n in names}


def prepare(data_dir, vocab_dir):
    return training.prepare(PretrainingConfig(
        "m", data_dir, **tiny_hparams(max_seq_length=64, vocab_file=os.path.join(vocab_dir, "vocab.txt"))))


@pytest.fixture(scope="module")
def built(sample_corpus_file, sample_vocab_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("crlf")
    crlf = crlf_copy(sample_vocab_dir, base / "vocab_crlf")
    return (crlf, build(sample_corpus_file, sample_vocab_dir, base / "lf_data"),
            build(sample_corpus_file, crlf, base / "crlf_data"))


def test_a_crlf_copy_builds_the_same_dataset_and_pretraining_takes_either(sample_vocab_dir, built):
    crlf, lf_data, crlf_data = built
    assert shards(lf_data) == shards(crlf_data)
    stats = [json.load(open(os.path.join(d, "stats.json"))) for d in (lf_data, crlf_data)]
    assert stats[0]["vocab_sha256"] == stats[1]["vocab_sha256"]
    for data in (lf_data, crlf_data):
        for vocab in (sample_vocab_dir, crlf):
            tokenizer, _ = prepare(data, vocab)
            assert tokenizer.vocab_size == stats[0]["vocab_size"]


def test_an_older_stats_json_with_the_files_byte_digest_is_accepted(tmp_path, built):
    crlf, _, crlf_data = built
    data = tmp_path / "data"
    shutil.copytree(crlf_data, data)
    stats = json.loads((data / "stats.json").read_text())
    with open(os.path.join(crlf, "vocab.txt"), "rb") as f:
        stats["vocab_sha256"] = hashlib.sha256(f.read()).hexdigest()  # what the builder recorded before
    (data / "stats.json").write_text(json.dumps(stats))
    prepare(str(data), crlf)


def test_another_vocab_of_the_same_size_is_still_refused(tmp_path, sample_vocab_dir, built):
    _, lf_data, _ = built
    other = tmp_path / "other"
    shutil.copytree(sample_vocab_dir, other)
    lines = (other / "vocab.txt").read_text(encoding="utf-8").split("\n")
    lines[-2], lines[-3] = lines[-3], lines[-2]  # two ids swapped: same tokens, another vocab
    (other / "vocab.txt").write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(UserInputError, match="dataset vocab_sha256 is"):
        prepare(lf_data, str(other))
