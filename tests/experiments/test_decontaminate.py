"""experiments/decontaminate.py on the tasks' real evaluation files, as task_table lays them out."""
import csv
import json
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
pytestmark = pytest.mark.skipif(not os.path.isdir(SHARED), reason="../shared/data is not on this machine")

from experiments import decontaminate, task_data  # noqa: E402
from experiments.decontaminate import corpus_sentences, filter_file, sentences  # noqa: E402


def corpus_of(tmp_path, lines):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return corpus_sentences([str(path)])


def test_klue_nli_examples_whose_premise_is_in_the_corpus_are_dropped_and_no_other(tmp_path):
    task_data.lay_out("klue-nli", str(tmp_path / "nli"), 50, 40, 0)
    path = str(tmp_path / "nli" / "klue-nli-v1.1_dev.json")
    examples = json.load(open(path, encoding="utf-8"))
    premises = [examples[3]["premise"], examples[17]["premise"]]
    # A premise inside a corpus line of several sentences, with other spacing, still counts.
    corpus = corpus_of(tmp_path, ["앞 문장입니다.  " + "  ".join(premises[0].split()) + " 뒤 문장.",
                                  premises[1], "삼가 고인의 명복을 빕니다."])
    expected = [e for e in examples if e["premise"] not in premises]
    assert filter_file(path, corpus) == (len(expected), len(examples) - len(expected))
    assert json.load(open(path, encoding="utf-8")) == expected


def test_short_formulaic_sentences_do_not_count(tmp_path):
    corpus = corpus_of(tmp_path, ["내 인생 최고의 영화", "삼가 고인의 명복을 빕니다."])
    assert corpus == set()
    task_data.lay_out("nsmc", str(tmp_path / "nsmc"), 10, 30, 0)
    path = tmp_path / "nsmc" / "ratings_test.txt"
    before = path.read_bytes()
    assert filter_file(str(path), corpus) == (30, 0)
    assert path.read_bytes() == before  # nothing dropped: the file is not rewritten


@pytest.mark.parametrize("task, name", [("nsmc", "ratings_test.txt"), ("intent-3i4k", "fci_test.txt")])
def test_one_example_per_line_files(tmp_path, task, name):
    task_data.lay_out(task, str(tmp_path / task), 10, 200, 0)
    path = tmp_path / task / name
    header = task != "intent-3i4k"  # 3i4k's files are label<TAB>utterance with no header
    lines = [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    examples = lines[1:] if header else lines
    target = next(line for line in examples if len(max(line.split("\t"), key=len)) >= 25)
    corpus = corpus_of(tmp_path, [max(target.split("\t"), key=len)])
    kept, dropped = filter_file(str(path), corpus, header=header)
    remaining = [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    assert dropped == examples.count(target) and kept == len(examples) - dropped and target not in remaining
    assert remaining[0] == lines[0] if header else remaining == [e for e in examples if e != target]


def test_chatbot_csv_rows(tmp_path):
    task_data.lay_out("intent-chatbot", str(tmp_path / "chat"), 10, 200, 0)
    path = tmp_path / "chat" / "test.csv"
    rows = list(csv.reader(open(path, encoding="utf-8")))
    target = next(r for r in rows[1:] if len(r[1]) >= 25)
    kept, dropped = filter_file(str(path), corpus_of(tmp_path, [target[1]]))
    after = list(csv.reader(open(path, encoding="utf-8")))
    assert after[0] == rows[0] and target not in after and dropped >= 1 and kept == len(after) - 1
    assert dropped == sum(1 for r in rows[1:] if target[1] in r)


@pytest.mark.parametrize("task, name", [("klue-ner", "klue-ner-v1.1_dev.tsv"), ("klue-dp", "klue-dp-v1.1_dev.tsv")])
def test_klue_sentence_blocks_match_on_the_plain_sentence(tmp_path, task, name):
    task_data.lay_out(task, str(tmp_path / task), 10, 30, 0)
    path = tmp_path / task / name
    blocks = [b for b in path.read_text(encoding="utf-8").strip("\n").split("\n\n") if b.strip()]
    block = blocks[5]
    if task == "klue-ner":  # the ## line carries <entity:TAG> marks: the plain text is the characters
        sentence = "".join(line.split("\t")[0] for line in block.split("\n") if not line.startswith("#"))
    else:
        sentence = [line for line in block.split("\n") if line.startswith("##")][-1].split("\t", 1)[1]
    assert len(sentence) >= 20
    kept, dropped = filter_file(str(path), corpus_of(tmp_path, [sentence]))
    after = [b for b in path.read_text(encoding="utf-8").strip("\n").split("\n\n") if b.strip()]
    assert (kept, dropped) == (len(blocks) - 1, 1) and block not in after and after[0] == blocks[0]


def test_korquad_drops_a_paragraph_with_its_questions(tmp_path):
    task_data.lay_out("korquad", str(tmp_path / "qa"), 10, 40, 0)
    path = tmp_path / "qa" / "KorQuAD_v1.0_dev.json"
    data = json.load(open(path, encoding="utf-8"))
    paragraph = data["data"][0]["paragraphs"][0]
    sentence = max(re.split(r"(?<=[.?!])\s+", paragraph["context"]), key=len)
    total = sum(len(p["qas"]) for a in data["data"] for p in a["paragraphs"])
    kept, dropped = filter_file(str(path), corpus_of(tmp_path, [sentence]))
    after = json.load(open(path, encoding="utf-8"))
    assert dropped == len(paragraph["qas"]) and kept == total - dropped
    assert paragraph["context"] not in [p["context"] for a in after["data"] for p in a["paragraphs"]]


def test_a_corpus_directory_reads_every_file_and_bad_paths_are_one_line_errors(tmp_path):
    from util.errors import UserInputError

    (tmp_path / "corpus" / "part").mkdir(parents=True)
    (tmp_path / "corpus" / "a.txt").write_text("첫 번째 파일의 충분히 긴 문장입니다.\n", encoding="utf-8")
    (tmp_path / "corpus" / "part" / "b.txt").write_text("두 번째 파일의 충분히 긴 문장이에요.\n", encoding="utf-8")
    assert corpus_sentences([str(tmp_path / "corpus")]) == {
        "첫 번째 파일의 충분히 긴 문장입니다.", "두 번째 파일의 충분히 긴 문장이에요."}
    with pytest.raises(UserInputError, match="nowhere.txt: no such pretraining corpus file or directory"):
        corpus_sentences([str(tmp_path / "nowhere.txt")])
    (tmp_path / "binary.bin").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(UserInputError, match="binary.bin: not UTF-8 text"):
        corpus_sentences([str(tmp_path / "binary.bin")])
    assert decontaminate.MIN_CHARS == 20


def test_benchmark_text_is_every_evaluation_sentence_and_no_training_one(tmp_path):
    from experiments.decontaminate import benchmark_sentences, drop_benchmark_lines, holds_benchmark_text

    benchmark = benchmark_sentences()
    klue_nli = json.load(open(os.path.join(SHARED, "klue-dev", "klue-nli-v1.1", "klue-nli-v1.1_dev.json"),
                              encoding="utf-8"))
    assert all(sentences(e["premise"]) <= benchmark for e in klue_nli)  # the whole dev file: the table carves it
    with open(os.path.join(SHARED, "nsmc", "ratings_test.txt"), encoding="utf-8") as f:
        test_reviews = [line.rstrip("\n").split("\t")[1] for line in list(f)[1:]]
    assert all(sentences(r) <= benchmark for r in test_reviews)
    with open(os.path.join(SHARED, "nsmc", "ratings_train.txt"), encoding="utf-8") as f:
        train = [line.rstrip("\n").split("\t")[1] for line in list(f)[1:2000]]
    train = [r for r in train if sentences(r)]  # long enough to count at all
    # Training files are not benchmark text: only the few train reviews that repeat an evaluation text.
    assert len(train) > 500 and sum(holds_benchmark_text(r, benchmark) for r in train) < len(train) // 20

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    premise = klue_nli[0]["premise"]
    (corpus / "wikinews.txt").write_text(f"앞 문장입니다. {premise} 뒤 문장입니다.\n\n다른 기사의 평범한 문장 하나입니다.\n",
                                         encoding="utf-8")
    assert drop_benchmark_lines(str(corpus), benchmark) == {"wikinews.txt": 1}
    assert (corpus / "wikinews.txt").read_text(encoding="utf-8") == "\n다른 기사의 평범한 문장 하나입니다.\n"
