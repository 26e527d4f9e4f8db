"""experiments/continued_pretraining.py: what each pretraining corpus holds, on the data as released."""
import os

import pytest

from experiments import continued_pretraining as cp
from experiments.stage_corpus import SHARED, nsmc_test_set, normalized

pytestmark = pytest.mark.skipif(not os.path.isdir(cp.THREE_I4K), reason="needs ../shared/data")


def lines(directory):
    found = set()
    for name in os.listdir(directory):
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            found.update(normalized(line) for line in f if line.strip())
    return found


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    work = tmp_path_factory.mktemp("continued")
    record = cp.stage_corpora(str(work), max_reviews=400)
    return work, record


def test_no_test_utterance_or_held_out_line_reaches_a_pretraining_corpus(staged):
    work, record = staged
    test_3i4k = {normalized(text) for _, text in cp.read_3i4k("fci_test.txt")}
    dialogue, written, heldout = (lines(work / "raw" / name) for name in ("dialogue", "written", "heldout"))
    assert not test_3i4k & dialogue and not test_3i4k & written
    assert test_3i4k <= heldout
    # 3i4k's train/val file repeats some test utterances (short fragments): those are dropped too.
    assert record["3i4k_train_val_dropped"] > 0
    _, nsmc_test_texts = nsmc_test_set(SHARED)
    assert not nsmc_test_texts & dialogue
    with open(work / "raw" / "heldout" / "reviews.txt", encoding="utf-8") as f:
        held_reviews = [line.strip() for line in f if line.strip()]
    with open(work / "raw" / "dialogue" / "reviews.txt", encoding="utf-8") as f:
        kept_reviews = [line.strip() for line in f if line.strip()]
    assert len(held_reviews) == record["reviews_held_out"] == 400 // cp.HELD_OUT_EVERY
    assert len(kept_reviews) + len(held_reviews) == 400
    # Chatbot Q/A is left out whole: the task table tests on a split of it.
    assert sorted(os.listdir(work / "raw" / "dialogue")) == ["3i4k_train_val.txt", "comments.txt", "reviews.txt"]


def test_no_line_of_a_pretraining_corpus_holds_benchmark_text(staged):
    from experiments.decontaminate import benchmark_sentences, holds_benchmark_text

    work, record = staged
    benchmark = benchmark_sentences(SHARED)
    # KLUE-NLI's premises are Wikinews sentences, and boddari's Wikinews text holds some of them.
    assert record["dropped_benchmark_text"]["written"] > 0
    for name in ("written", "dialogue"):
        for file_name in os.listdir(work / "raw" / name):
            with open(work / "raw" / name / file_name, encoding="utf-8") as f:
                assert not [line for line in f if line.strip() and holds_benchmark_text(line, benchmark)]


def test_written_corpus_is_written_text_only(staged):
    work, _ = staged
    names = sorted(os.listdir(work / "raw" / "written"))
    assert names and all(n.startswith(("boddari_", "news_", "konlpy_")) for n in names)


def test_intent_training_file_is_a_seeded_sample_across_classes(tmp_path):
    out = cp.intent_data(str(tmp_path), 700)
    with open(os.path.join(out, "train.tsv"), encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t", 1) for line in f]
    assert len(rows) == 700
    assert len({label for label, _ in rows}) == 7  # the file is sorted by label: a head would be one class
    again = cp.intent_data(str(tmp_path / "again"), 700)
    assert open(os.path.join(again, "train.tsv"), encoding="utf-8").read() == \
        open(os.path.join(out, "train.tsv"), encoding="utf-8").read()
