import json
import os
import subprocess
import sys

import pytest

import build_vocab
from util.errors import run_cli
from util.tokenization import KoTokenizer, MecabSplitter
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


def test_mecab_wordpiece_pieces_respect_morpheme_boundaries(sample_corpus_file, tmp_path):
    build(sample_corpus_file, str(tmp_path), tokenizer_type="mecab_wordpiece", vocab_size=1500,
          min_frequency=1, limit_alphabet=1000, unused_size=10)
    assert json.load(open(tmp_path / "tokenizer_config.json"))["tokenizer_type"] == "mecab_wordpiece"
    tok = KoTokenizer.from_vocab(tmp_path)  # picks mecab up from the JSON
    split = MecabSplitter()
    for line in open(sample_corpus_file, encoding="utf-8").read().split("\n")[:80]:
        if not line:
            continue
        # Tokenizing the whole line equals tokenizing each morpheme on its own: no piece spans two.
        per_morpheme = [t for m in split(line).split() for t in tok.backend.encode(m, add_special_tokens=False).tokens]
        assert tok.tokenize(line) == per_morpheme
    assert tok.pretokenize("아버지가방에") == "아버지 가 방 에"
    assert tok.tokenize("학교에")[-1] == "에"  # the particle starts its own piece, never "##에"


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
