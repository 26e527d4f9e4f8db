"""A mecab_wordpiece model directory tokenizes right outside this repository.

The directory is loaded with transformers' own mechanism (the saved class file, auto_map,
trust_remote_code=True) in a process that cannot import the project, and its tokens are
compared with the training tokenizer's on real NSMC test reviews.
"""
import csv
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import SHARED_DATA
from util.tokenization import KoTokenizer

NSMC = os.path.join(SHARED_DATA, "nsmc")
# Slow: each test starts a fresh interpreter that imports transformers (about a minute on 2 busy cores).
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.path.isdir(NSMC), reason="../shared/data/nsmc is not on this machine")]

# Run with `python -I` (no PYTHONPATH, no user site, no script or cwd on sys.path) from a
# directory outside the repository: only the venv's site-packages are importable.
OUTSIDE = r"""
import json, sys
try:
    import util.hf_tokenizer
    sys.exit("the project is importable")
except ImportError:
    pass
from transformers import AutoTokenizer
model_dir, reviews_file = sys.argv[1], sys.argv[2]
try:
    AutoTokenizer.from_pretrained(model_dir)
    refused = False
except ValueError as e:
    refused = "trust_remote_code" in str(e)
tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=True)
reviews = json.load(open(reviews_file, encoding="utf-8"))
print("\n" + json.dumps({"class": type(tokenizer).__name__, "refused_without_trust": refused,
                  "tokens": [tokenizer.tokenize(r) for r in reviews],
                  "ids": tokenizer(reviews[0])["input_ids"]}))  # after the refused prompt
"""


def nsmc_documents(name, n):
    with open(os.path.join(NSMC, name), encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [row["document"] for _, row in zip(range(n), rows)]


@pytest.fixture(scope="module")
def nsmc_mecab_model_dir(tmp_path_factory):
    """A mecab_wordpiece vocab trained on 20,000 NSMC train reviews, saved as a model directory is."""
    from util.hf_tokenizer import load_tokenizer
    from util.vocab_builder import build_vocab

    root = tmp_path_factory.mktemp("nsmc_mecab")
    corpus = root / "train.txt"
    corpus.write_text("\n".join(nsmc_documents("ratings_train.txt", 20000)) + "\n", encoding="utf-8")
    vocab_dir = root / "vocab"
    build_vocab(str(corpus), str(vocab_dir), "mecab_wordpiece", vocab_size=8000, min_frequency=2,
                limit_alphabet=1500, unused_size=10)
    model_dir = root / "model"
    load_tokenizer(str(vocab_dir)).save_pretrained(str(model_dir))
    return str(vocab_dir), str(model_dir)


def run_outside(model_dir, reviews, tmp_path):
    reviews_file = tmp_path / "reviews.json"
    reviews_file.write_text(json.dumps(reviews, ensure_ascii=False), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_MODULES_CACHE=str(tmp_path / "hf_modules"), HF_HUB_OFFLINE="1", USE_TF="0")
    out = subprocess.run([sys.executable, "-I", "-c", OUTSIDE, model_dir, str(reviews_file)], cwd=tmp_path,
                         env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_autotokenizer_outside_the_repo_matches_the_training_tokenizer_on_nsmc(nsmc_mecab_model_dir, tmp_path):
    vocab_dir, model_dir = nsmc_mecab_model_dir
    reviews = nsmc_documents("ratings_test.txt", 1000)
    result = run_outside(model_dir, reviews, tmp_path)
    assert result["class"] == "MecabElectraTokenizerFast"
    assert result["refused_without_trust"], "AutoTokenizer without trust_remote_code must not load plain WordPiece"
    training = KoTokenizer.from_vocab(vocab_dir).tokenize_batch(reviews)
    equal = sum(a == b for a, b in zip(result["tokens"], training))
    assert equal == len(reviews), f"{equal} of {len(reviews)} reviews tokenized alike"
    ours = KoTokenizer.from_vocab(vocab_dir)
    assert result["ids"] == [ours.cls_id] + ours.encode(reviews[0]) + [ours.sep_id]


def test_a_directory_saved_outside_the_repo_still_loads_the_class(nsmc_mecab_model_dir, tmp_path):
    """Re-saving the remotely loaded tokenizer keeps the class file and auto_map."""
    _, model_dir = nsmc_mecab_model_dir
    resave = (r"import sys; from transformers import AutoTokenizer; "
              r"AutoTokenizer.from_pretrained(sys.argv[1], trust_remote_code=True).save_pretrained(sys.argv[2])")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_MODULES_CACHE=str(tmp_path / "hf_modules"), HF_HUB_OFFLINE="1", USE_TF="0")
    again = tmp_path / "again"
    subprocess.run([sys.executable, "-I", "-c", resave, model_dir, str(again)], cwd=tmp_path, env=env,
                   check=True, capture_output=True, timeout=300)
    config = json.loads((again / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["auto_map"]["AutoTokenizer"][1] == "tokenization_mecab_electra.MecabElectraTokenizerFast"
    assert (again / "vocab.txt").read_bytes() == open(os.path.join(model_dir, "vocab.txt"), "rb").read()
    reviews = nsmc_documents("ratings_test.txt", 50)
    assert run_outside(str(again), reviews, tmp_path)["tokens"] == run_outside(model_dir, reviews, tmp_path)["tokens"]
