import json
import os
import subprocess
import sys

import pytest

import build_vocab
from util.errors import run_cli
from util.tokenization import KoTokenizer
from util.vocab_builder import build_vocab as build

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def vocab_lines(directory):
    return open(os.path.join(directory, "vocab.txt"), encoding="utf-8").read().split("\n")[:-1]


def test_published_layout_and_exact_size(sample_corpus_file, tmp_path):
    stats = build(sample_corpus_file, str(tmp_path), vocab_size=1200, min_frequency=1, limit_alphabet=1000, unused_size=30)
    lines = vocab_lines(tmp_path)
    assert lines[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert lines[5:35] == [f"[unused{i}]" for i in range(30)]
    assert len(lines) == 1200 == stats["vocab_size"] and stats["learned_entries"] == 1165
    assert len(set(lines)) == len(lines)
    assert any(l.startswith("##") for l in lines[35:])
    config = json.load(open(tmp_path / "tokenizer_config.json"))
    assert config["tokenizer_type"] == "wordpiece" and config["do_lower_case"] is False
    assert config["strip_accents"] is False


def test_small_corpus_gives_fewer_entries_not_an_error(sample_corpus_file, tmp_path):
    stats = build(sample_corpus_file, str(tmp_path), vocab_size=40000, min_frequency=3, unused_size=500)
    assert 505 < stats["vocab_size"] < 40000


def test_mecab_wordpiece_vocab_has_the_published_layout(sample_corpus_file, tmp_path):
    stats = build(sample_corpus_file, str(tmp_path), tokenizer_type="mecab_wordpiece", vocab_size=1500,
                  min_frequency=2, limit_alphabet=400, unused_size=10, num_processes=2)
    assert json.load(open(tmp_path / "tokenizer_config.json"))["tokenizer_type"] == "mecab_wordpiece"
    lines = vocab_lines(tmp_path)
    assert len(lines) == stats["vocab_size"] and len(set(lines)) == len(lines)
    assert all(len(t) == 1 for t in lines[15:400])  # the corpus's most frequent characters
    assert "##에" in lines and "##다" in lines  # then morphemes, later ones marked
    single = tmp_path / "one"
    build(sample_corpus_file, str(single), tokenizer_type="mecab_wordpiece", vocab_size=1500,
          min_frequency=2, limit_alphabet=400, unused_size=10)
    assert vocab_lines(single) == lines  # ties keep first appearance: workers change nothing
    tok = KoTokenizer.from_vocab(tmp_path)  # picks mecab up from the JSON
    # A morpheme the vocab lacks ("학교" here, seen once) is spelled out in bare characters.
    assert "학교" not in tok.vocab and tok.tokenize("학교에") == ["학", "교", "##에"]


def test_lower_case_vocab(sample_corpus_file, tmp_path):
    build(sample_corpus_file, str(tmp_path), vocab_size=1000, min_frequency=1, unused_size=5, do_lower_case=True)
    lines = vocab_lines(tmp_path)
    assert not any(c.isupper() for l in lines[10:] for c in l)
    assert json.load(open(tmp_path / "tokenizer_config.json"))["do_lower_case"] is True


@pytest.mark.parametrize("make_corpus, extra, message", [
    (lambda p: None, [], "corpus file not found"),
    (lambda p: p.write_bytes(b"\n\n"), [], "corpus file has no text"),
    (lambda p: p.write_bytes(b"\xff\xfe\n"), [], "not UTF-8"),
    (lambda p: p.write_text("가\n", encoding="utf-8"), ["--vocab_size", "100", "--unused_size", "100"], "leaves no room"),
    (lambda p: p.write_text("가\n", encoding="utf-8"), ["--unused_size", "-1"], "--unused_size must be 0 or more, got -1"),
    (lambda p: p.write_text("가\n", encoding="utf-8"), ["--num_processes", "0"], "--num_processes must be at least 1, got 0"),
    (lambda p: p.write_text("가\n", encoding="utf-8"), ["--tokenizer", "mecab_wordpiece", "--num_processes", "-2"],
     "--num_processes must be at least 1, got -2"),
])
def test_bad_input_exits_1_and_writes_nothing(tmp_path, capsys, make_corpus, extra, message):
    corpus = tmp_path / "c.txt"
    make_corpus(corpus)
    out = tmp_path / "vocab"
    with pytest.raises(SystemExit) as e:
        run_cli(lambda: build_vocab.main(["--corpus", str(corpus), "--output_dir", str(out)] + extra))
    assert e.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err
    assert not (out / "vocab.txt").exists()


def test_script_runs_as_a_command(sample_corpus_file, tmp_path):
    result = subprocess.run([sys.executable, "build_vocab.py", "--corpus", sample_corpus_file, "--vocab_size", "800",
                             "--min_frequency", "1", "--unused_size", "5", "--output_dir", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["vocab_size"] == 800


def test_build_vocab_prints_no_blank_lines_and_says_when_the_vocab_is_smaller(sample_corpus_file, tmp_path, capfd):
    import build_vocab as script

    # A fresh process writing into a pipe, as make runs it: the Rust trainer's bars once left blank lines.
    done = subprocess.run([sys.executable, script.__file__, "--corpus", sample_corpus_file, "--output_dir",
                           str(tmp_path / "wp"), "--vocab_size", "800", "--min_frequency", "1", "--unused_size", "10"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and json.loads(done.stdout)["vocab_size"] == 800
    assert done.stderr == "", repr(done.stderr)
    script.main(["--corpus", sample_corpus_file, "--output_dir", str(tmp_path / "mecab"), "--vocab_size", "50000",
                 "--min_frequency", "2", "--unused_size", "10", "--tokenizer", "mecab_wordpiece"])
    out, err = capfd.readouterr()
    size = json.loads(out)["vocab_size"]
    assert f"note: vocab.txt has {size:,} entries, fewer than the 50,000 asked (--vocab_size)" in err
    assert "--min_frequency 2 times; a larger corpus or a lower --min_frequency gives more" in err


NSMC_TRAIN = os.path.join(ROOT, "..", "shared", "data", "nsmc", "ratings_train.txt")


@pytest.mark.skipif(not os.path.isfile(NSMC_TRAIN), reason="needs ../shared/data/nsmc")
def test_build_vocab_on_real_reviews_prints_no_blank_lines(tmp_path):
    # 2,000 NSMC reviews are enough for the Rust trainer's bars: before, they left 3 blank lines on stdout.
    with open(NSMC_TRAIN, encoding="utf-8") as f:
        reviews = [line.split("\t")[1] for line in list(f)[1:2001]]
    corpus = tmp_path / "reviews.txt"
    corpus.write_text("\n".join(reviews) + "\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "build_vocab.py", "--corpus", str(corpus), "--output_dir",
                           str(tmp_path / "vocab"), "--vocab_size", "3000", "--min_frequency", "1", "--unused_size", "10"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "" not in done.stdout.splitlines() and "" not in done.stderr.splitlines(), repr(done.stdout)
