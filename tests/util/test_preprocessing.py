import os
import subprocess
import sys

import pytest

import preprocess
from util.errors import run_cli
from util.preprocessing import preprocess_corpus

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def documents(path):
    text = open(path, encoding="utf-8").read()
    assert text.endswith("\n\n"), "every document ends with a blank line"
    return [block.split("\n") for block in text.strip("\n").split("\n\n")]


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_cleans_splits_dedups_and_keeps_document_boundaries(tmp_path):
    write(tmp_path / "in" / "a.txt",
          "영화 진짜 재밌었어요ㅋㅋㅋㅋ 다음에 또 볼래요!!!!!\n\n훈민정음(訓民正音)은 문자다.\n\n영화 진짜 재밌었어요ㅋㅋ\n")
    out = tmp_path / "out.txt"
    stats = preprocess_corpus(str(tmp_path / "in"), str(out), show_progress=False)
    assert documents(out) == [["영화 진짜 재밌었어요ㅋㅋ", "다음에 또 볼래요!!"], ["훈민정음()은 문자다."]]
    assert stats["duplicates_dropped"] == 1  # the third document's only sentence was seen already
    assert stats["documents"] == 2 and stats["sentences_out"] == 3 and stats["sentences_in"] == 4
    assert stats["characters_removed"] == 2 + 3 + 4  # ㅋ×2, !×3, 訓民正音


def test_parallel_output_is_identical(tmp_path, sample_corpus_file):
    out = tmp_path / "two.txt"
    preprocess_corpus(os.path.join(ROOT, "data", "sample"), str(out), num_processes=2, show_progress=False)
    assert out.read_bytes() == open(sample_corpus_file, "rb").read()


def test_sample_corpus_is_clean_nfc_text(sample_corpus_file):
    import unicodedata

    text = open(sample_corpus_file, encoding="utf-8").read()
    assert unicodedata.is_normalized("NFC", text)
    assert "ㅋㅋㅋ" not in text and "!!!" not in text and "訓" not in text
    lines = [l for l in text.split("\n") if l]
    assert len(lines) == len(set(lines)) > 200


def test_broken_files_are_reported_and_good_ones_kept(tmp_path, capsys):
    corpus = tmp_path / "in"
    write(corpus / "good.txt", "좋은 문장입니다.\n")
    (corpus / "bad.txt").write_bytes(b"\xff\xfe\xfa\n")
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "blob.bin").write_bytes(b"\x00\x01\x02")
    out = tmp_path / "out.txt"
    preprocess.main(["--corpus_dir", str(corpus), "--output_file", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert documents(out) == [["좋은 문장입니다."]]
    for name in ("bad.txt:1: not UTF-8", "empty.txt: empty file", "blob.bin: binary file"):
        assert name in err


@pytest.mark.parametrize("setup, message", [
    (lambda d: None, "corpus directory not found"),
    (lambda d: d.mkdir(), "corpus directory has no files"),
    (lambda d: (d.mkdir(), (d / "x.txt").write_bytes(b"\xff\xff\n")), "no usable text under"),
])
def test_bad_input_exits_1_with_one_line_and_no_output(tmp_path, capsys, setup, message):
    corpus = tmp_path / "corpus"
    setup(corpus)
    out = tmp_path / "out.txt"
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: preprocess.main(["--corpus_dir", str(corpus), "--output_file", str(out), "--quiet"]))
    assert exit_info.value.code == 1
    err_lines = [l for l in capsys.readouterr().err.splitlines() if l.startswith("error:")]
    assert len(err_lines) == 1 and message in err_lines[0]
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_script_runs_as_a_command(tmp_path):
    write(tmp_path / "in" / "a.txt", "안녕하세요. 반갑습니다.\n")
    out = tmp_path / "o.txt"
    result = subprocess.run([sys.executable, "preprocess.py", "--corpus_dir", str(tmp_path / "in"),
                             "--output_file", str(out), "--quiet"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert documents(out) == [["안녕하세요.", "반갑습니다."]]
    missing = subprocess.run([sys.executable, "preprocess.py", "--corpus_dir", str(tmp_path / "nope"),
                              "--output_file", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert missing.returncode == 1 and missing.stderr.strip().startswith("error: corpus directory not found")


def test_sentence_split_does_not_depend_on_what_was_split_before():
    # kss's fast splitter used to learn from every text it saw (a defaultdict bug), so the
    # same sentence split differently after a few thousand others; see _freeze_kss_rule_tables.
    import subprocess as sp

    probe = ("from util.preprocessing import split_sentences as s\n"
             "t = '효은이 넌 가고 싶은 학교 다니다가 생각 바뀌면 그땐 엄마 아빠랑 상의하면 되고'\n"
             "fresh = s(t)\n"
             "for c in '가나다라마바사아자차카타파하뷁쀍ㅋㅎ!?~.,학교생각엄마아빠다니':\n"
             "    s(c + ' 그리고 ' + c + '다 ' + c + '요 어쩌고')\n"
             "print(fresh == s(t), fresh)\n")
    out = sp.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    same, fresh = out.stdout.split(" ", 1)
    assert same == "True", out.stdout
    assert "다니다가" in fresh
