"""experiments/intent_splits.py and the pretraining corpus: what the intent tasks test on is never staged."""
import csv
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
pytestmark = pytest.mark.skipif(not os.path.isdir(SHARED), reason="../shared/data is not on this machine")

from experiments import intent_splits, stage_corpus  # noqa: E402


def test_chatbot_split_is_fixed_disjoint_by_question_and_complete():
    header, train, test = intent_splits.chatbot_split()
    again = intent_splits.chatbot_split()
    assert header == ["Q", "A", "label"] and (train, test) == (again[1], again[2])
    _, rows = intent_splits.chatbot_rows()
    assert len(train) + len(test) == len(rows) == 11823
    assert not {r[0].strip() for r in train} & {r[0].strip() for r in test}
    assert 0.18 < len(test) / len(rows) < 0.22


def test_written_split_is_what_the_task_reads(tmp_path):
    n_train, n_test = intent_splits.write_chatbot_split(str(tmp_path))
    with open(tmp_path / "test.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["Q", "A", "label"] and rows[1:] == intent_splits.chatbot_split()[2]
    assert (n_train, n_test) == tuple(len(p) for p in intent_splits.chatbot_split()[1:])


def test_stage_corpus_drops_every_intent_test_utterance(tmp_path):
    stats = stage_corpus.stage_intent_text(SHARED, str(tmp_path))
    heldout = intent_splits.heldout_texts()
    with open(tmp_path / "chatbot.csv", encoding="utf-8", newline="") as f:
        chatbot = list(csv.reader(f))[1:]
    with open(tmp_path / "3i4k.tsv", encoding="utf-8") as f:
        utterances = [line.rstrip("\n").split("\t", 1)[1] for line in list(f)[1:]]
    assert not {intent_splits.normalized(r[0]) for r in chatbot} & heldout
    assert not {intent_splits.normalized(u) for u in utterances} & heldout
    # Every test utterance of 3i4k was in fci.txt and is gone; the counts add up to the sources.
    _, rows = intent_splits.chatbot_rows()
    assert stats["dropped_chatbot_test_rows"] == len(rows) - len(chatbot) >= len(intent_splits.chatbot_split()[2])
    with open(os.path.join(SHARED, stage_corpus.SOURCES["3i4k"][0]), encoding="utf-8") as f:
        assert stats["dropped_3i4k_test_lines"] == sum(1 for _ in f) - len(utterances) >= 6000
