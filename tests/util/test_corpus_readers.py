import json
import os

import pytest

from util.corpus_readers import ReadOptions, ReadStats, iter_documents

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")


def read(path, **options):
    stats = ReadStats()
    docs = list(iter_documents(str(path), ReadOptions(**options), stats))
    return docs, stats


def test_text_blank_lines_separate_documents(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("첫 문장\n둘째 문장\n\n\n새 문서\n", encoding="utf-8")
    docs, stats = read(f)
    assert docs == [["첫 문장", "둘째 문장"], ["새 문서"]]
    assert stats.lines == 5 and stats.warnings == []
    docs, _ = read(f, blanks_separate_docs=False)
    assert docs == [["첫 문장", "둘째 문장", "새 문서"]]


def test_text_one_document_per_line(tmp_path):
    """Reviews one a line: each its own document, not one document of the whole file."""
    f = tmp_path / "reviews.txt"
    f.write_text("정말 재밌어요. 또 볼래요\n\n별로였다\n최고!\n", encoding="utf-8")
    docs, stats = read(f, one_doc_per_line=True)
    assert docs == [["정말 재밌어요. 또 볼래요"], ["별로였다"], ["최고!"]] and stats.warnings == []


def test_text_bom_and_crlf(tmp_path):
    f = tmp_path / "win.txt"
    f.write_bytes("\ufeff안녕\r\n하세요\r\n".encode("utf-8"))
    assert read(f)[0] == [["안녕", "하세요"]]


def test_invalid_utf8_line_is_skipped_and_named(tmp_path):
    f = tmp_path / "bad.txt"
    f.write_bytes("좋은 줄\n".encode() + b"\xff\xfe broken\n" + "다음 줄\n".encode())
    docs, stats = read(f)
    assert docs == [["좋은 줄", "다음 줄"]]
    assert stats.lines_skipped == 1
    assert stats.warnings == [f"{f}:2: not UTF-8 (byte 0), line skipped"]


def test_nikl_style_json_documents_and_keys(tmp_path):
    f = tmp_path / "nikl.json"
    f.write_text(json.dumps({"id": "X", "document": [
        {"id": "1", "utterance": [{"form": "가 문장"}, {"form": "나 문장", "note": "무시"}]},
        {"id": "2", "paragraph": [{"form": "다 문장"}]},
    ]}, ensure_ascii=False), encoding="utf-8")
    docs, _ = read(f)
    assert docs == [["가 문장", "나 문장"], ["다 문장"]]
    docs, _ = read(f, json_keys=("note",))
    assert docs == [["무시"]]
    docs, stats = read(f, json_keys=("text",))
    assert docs == [] and stats.warnings == [f"{f}: no strings under the keys text; name the keys holding "
                                             "text with --json_keys; file skipped"]


def test_aihub_style_question_answer_json(tmp_path):
    f = tmp_path / "aihub.json"
    f.write_text(json.dumps([{"question": "몇 시예요?", "answer": "세 시요."},
                             {"question": "어디예요?", "answer": "집이요."}], ensure_ascii=False), encoding="utf-8")
    assert read(f)[0] == [["몇 시예요?", "세 시요."], ["어디예요?", "집이요."]]


def test_malformed_json_names_file_and_line(tmp_path):
    f = tmp_path / "broken.json"
    f.write_text('{"document": [\n{"form": "가"},\n{"form": }]}', encoding="utf-8")
    docs, stats = read(f)
    assert docs == [] and stats.files_skipped == 1
    assert stats.warnings[0].startswith(f"{f}:3: malformed JSON")


def test_jsonl_one_document_per_line(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text('{"text": "하나"}\n"둘"\nnot json\n{"text": "셋"}\n', encoding="utf-8")
    docs, stats = read(f)
    assert docs == [["하나"], ["둘"], ["셋"]]
    assert stats.lines_skipped == 1 and f"{f}:3:" in stats.warnings[0]


def test_csv_default_columns_and_quoted_multiline(tmp_path):
    f = tmp_path / "pairs.csv"
    f.write_text('Q,A,label\n안녕,"반가워, 정말",0\n"여러 줄\n질문",답,1\n', encoding="utf-8")
    docs, _ = read(f)
    assert docs == [["안녕", "반가워, 정말"], ["여러 줄\n질문", "답"]]


def test_tsv_named_columns_and_missing_column(tmp_path):
    f = tmp_path / "x.tsv"
    f.write_text("id\tbody\tlabel\n1\t본문 하나\t0\n2\t본문 둘\t1\n", encoding="utf-8")
    docs, stats = read(f)  # no usual text column name: skipped with a hint
    assert docs == [] and "--text_columns" in stats.warnings[0] and stats.warnings[0].startswith(f"{f}:1:")
    docs, _ = read(f, text_columns=("body",))
    assert docs == [["본문 하나"], ["본문 둘"]]


def test_empty_and_binary_files_are_skipped_by_name(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\x89PNG\x00\x00\x01")
    for f, reason in ((empty, "empty file"), (binary, "binary file")):
        docs, stats = read(f)
        assert docs == [] and stats.files_skipped == 1
        assert stats.warnings[0].startswith(f"{f}: {reason}")


def test_real_chatbot_csv_reads_every_pair():
    path = os.path.join(SHARED, "chatbot-data", "ChatbotData.csv")
    if not os.path.exists(path):
        pytest.skip("shared data not present")
    docs, stats = read(path)
    assert len(docs) == 11823  # MANIFEST: 11,823 Q/A pairs
    assert all(len(d) == 2 for d in docs) and stats.warnings == []
