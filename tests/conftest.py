"""Fixtures shared across the test packages: the bundled sample corpus, cleaned, and a vocab."""
import atexit
import os
import shutil
import sys
import tempfile

import pytest

# Helpers shared by the test packages (process_tree) are imported by their own name: a `tests`
# package in site-packages shadows ours.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# Nothing a test runs may write under ~: transformers copies a directory's tokenizer class
# file (auto_map) into HF_MODULES_CACHE, read when transformers is first imported.
_SCRATCH = tempfile.mkdtemp(prefix="koelectra_tests_")
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
os.environ.setdefault("HF_MODULES_CACHE", os.path.join(_SCRATCH, "hf_modules"))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_DIR = os.path.join(ROOT, "data", "sample")
SHARED_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")


@pytest.fixture(scope="session")
def sample_corpus_file(tmp_path_factory):
    """data/sample cleaned by the real preprocess stage."""
    from util.preprocessing import preprocess_corpus

    out = tmp_path_factory.mktemp("corpus") / "sample.txt"
    preprocess_corpus(SAMPLE_DIR, str(out), show_progress=False)
    return str(out)


@pytest.fixture(scope="session")
def sample_vocab_dir(sample_corpus_file, tmp_path_factory):
    """A small wordpiece vocab trained on the cleaned sample by the real build_vocab stage."""
    from util.vocab_builder import build_vocab

    out = tmp_path_factory.mktemp("vocab")
    build_vocab(sample_corpus_file, str(out), "wordpiece", vocab_size=1500, min_frequency=1,
                limit_alphabet=1000, unused_size=20)
    return str(out)


@pytest.fixture
def mount_tmpfs(tmp_path):
    """``mount_tmpfs(size)``: a real small filesystem under tmp_path (root only; the test is skipped
    elsewhere), unmounted when the test ends. Full-disk paths need a disk that really fills."""
    import subprocess

    mounted = []

    def mount(size):
        point = tmp_path / f"tmpfs{len(mounted)}"
        point.mkdir()
        if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                                               capture_output=True).returncode:
            pytest.skip("mounting a tmpfs needs root")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", str(point)], check=True)
