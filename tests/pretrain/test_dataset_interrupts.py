"""build_pretraining_dataset.py with 2 processes stopped by Ctrl-C, SIGTERM or kill -9 mid-build:
one "interrupted" line (no worker's KeyboardInterrupt traceback), no shard or temporary left,
no worker outliving the builder."""
import os
import re
import shutil
import signal

import pytest

from process_tree import ROOT, Script, wait_until

SAMPLE_DIR = os.path.join(ROOT, "data", "sample")


@pytest.fixture(scope="module")
def long_corpus(tmp_path_factory):
    """data/sample's text files 2,000 times over (20 MB), cut into 0.02 MB chunks: many chunks to stop in.
    (200 times over, the TF-free builder finished in a second, once before the signal reached it.)"""
    directory = tmp_path_factory.mktemp("long_corpus")
    for n in range(2000):
        for name in ("written.txt", "dialogue.txt"):
            shutil.copy(os.path.join(SAMPLE_DIR, name), directory / f"{n:03d}_{name}")
    return str(directory)


def start_builder(tmp_path, corpus, vocab, out):
    run = Script(tmp_path, [os.path.join(ROOT, "build_pretraining_dataset.py"), "--corpus_dir", corpus,
                            "--vocab_file", vocab, "--output_dir", str(out), "--num_processes", "2",
                            "--chunk_mb", "0.02", "--max_seq_length", "64"], name="builder")
    # The progress bar past its first percent: workers busy, shards half-written under temporary names.
    wait_until(lambda: re.search(r"building examples:\s+[1-9]\d*%", run.stderr), what="the first progress")
    return run


def last_line(text):
    return [line for line in text.replace("\r", "\n").splitlines() if line.strip()][-1]


@pytest.mark.parametrize("signum,group,status,line", [
    (signal.SIGINT, True, 130, "interrupted"),  # Ctrl-C: the terminal signals the whole group
    (signal.SIGTERM, False, 143, "interrupted (SIGTERM)"),  # a scheduler signals the job's process
])
def test_interrupted_build_ends_clean(tmp_path, long_corpus, sample_vocab_dir, signum, group, status, line):
    out = tmp_path / "out"
    run = start_builder(tmp_path, long_corpus, sample_vocab_dir, out)
    code, left = run.stop(signum, group=group, min_children=2)
    assert code == status, run.stderr
    assert "Traceback" not in run.stderr and "KeyboardInterrupt" not in run.stderr, run.stderr
    assert last_line(run.stderr) == line
    # No shard, no temporary, no stats.json, no lock: the output directory the builder made is gone too.
    assert not out.exists(), os.listdir(out)
    assert left == []


def test_builder_workers_end_with_a_builder_killed_with_9(tmp_path, long_corpus, sample_vocab_dir):
    run = start_builder(tmp_path, long_corpus, sample_vocab_dir, tmp_path / "out")
    _, left = run.stop(signal.SIGKILL)
    assert left == []
