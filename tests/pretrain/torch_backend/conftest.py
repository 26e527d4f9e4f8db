"""A pretraining dataset built from data/sample by the real stages (preprocess, build_vocab, the
TF-free dataset builder), and the command line that pretrains on it with the torch backend."""
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TINY_CONFIG = os.path.join(ROOT, "conf", "pretrain", "tiny.json")
MAX_LEN = 64


@pytest.fixture(scope="session")
def sample_data(sample_corpus_file, sample_vocab_dir, tmp_path_factory):
    """A data dir: four TFRecord shards of data/sample, stats.json and the vocab beside them."""
    import shutil

    from pretrain.dataset_builder import DatasetOptions, build_dataset

    corpus = tmp_path_factory.mktemp("corpus")
    os.symlink(sample_corpus_file, corpus / "sample.txt")
    out = str(tmp_path_factory.mktemp("sample_data"))
    build_dataset(DatasetOptions(corpus_dir=str(corpus), vocab_file=sample_vocab_dir, output_dir=out,
                                 max_seq_length=MAX_LEN, num_out_files=4, num_processes=1, progress=False))
    for name in ("vocab.txt", "tokenizer_config.json"):
        shutil.copy(os.path.join(sample_vocab_dir, name), out)
    return out


def pretrain_command(data_dir, model_dir, *extra, **hparams):
    """run_pretraining.py with conf/pretrain/tiny.json and ``hparams`` layered over it."""
    return [sys.executable, os.path.join(ROOT, "run_pretraining.py"), "--data_dir", data_dir, "--model_name",
            model_dir, "--hparams", TINY_CONFIG, "--hparams", json.dumps(hparams), *extra]


def quiet_env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
