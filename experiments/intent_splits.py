"""The dialogue-intent test sets, defined once: what the intent tasks test on and pretraining must not see.

- 3i4k (warnikchow/3i4k): its official split, ``data/train_val_test/fci_train_val.txt`` /
  ``fci_test.txt`` (``label<TAB>utterance``, labels 0-6).
- Chatbot data (songys/Chatbot_data, ``ChatbotData.csv``: ``Q,A,label``, labels 0-2) has no
  official split: the distinct questions are shuffled with ``random.Random(CHATBOT_SPLIT_SEED)``
  and ``CHATBOT_TEST_FRACTION`` of them are the test set; every row of a test question is a
  test row, so a question asked twice is never on both sides.

experiments/task_data.py lays the intent tasks out from these splits and
experiments/stage_corpus.py drops ``heldout_texts`` from the pretraining corpus, so the two
cannot disagree. Writing the Chatbot split for the shipped ``conf/intent-chatbot`` YAMLs:

    python -m experiments.intent_splits --output_dir data/finetune/intent-chatbot
"""
import argparse
import csv
import io
import os
import random

from util.files import atomic_write

SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data")
CHATBOT_CSV = os.path.join("chatbot-data", "ChatbotData.csv")
THREEI4K_DIR = os.path.join("pretrain-text", "3i4k", "data", "train_val_test")
CHATBOT_SPLIT_SEED = 0
CHATBOT_TEST_FRACTION = 0.2


def normalized(text):
    return " ".join(text.split())


def chatbot_rows(shared=SHARED):
    """(header, rows) of ChatbotData.csv, each row ``[Q, A, label]``."""
    with open(os.path.join(shared, CHATBOT_CSV), encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], [row for row in rows[1:] if row]


def chatbot_split(shared=SHARED):
    """(header, train rows, test rows), each part in file order; split by distinct question."""
    header, rows = chatbot_rows(shared)
    questions = sorted({normalized(row[0]) for row in rows})
    random.Random(CHATBOT_SPLIT_SEED).shuffle(questions)
    test_questions = set(questions[:int(round(len(questions) * CHATBOT_TEST_FRACTION))])
    train = [row for row in rows if normalized(row[0]) not in test_questions]
    test = [row for row in rows if normalized(row[0]) in test_questions]
    return header, train, test


def threei4k_test_utterances(shared=SHARED):
    with open(os.path.join(shared, THREEI4K_DIR, "fci_test.txt"), encoding="utf-8") as f:
        return {normalized(line.split("\t", 1)[1]) for line in f if "\t" in line}


def heldout_texts(shared=SHARED):
    """Every utterance an intent task tests on (normalised whitespace): 3i4k's test set and the
    Chatbot test split's questions."""
    _, _, test = chatbot_split(shared)
    return threei4k_test_utterances(shared) | {normalized(row[0]) for row in test}


def csv_text(header, rows):
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header] + rows)
    return out.getvalue()


def write_chatbot_split(output_dir, shared=SHARED, train_rows=None, test_rows=None):
    """``train.csv`` and ``test.csv`` (``Q,A,label``) in ``output_dir``; returns their row counts."""
    header, train, test = chatbot_split(shared)
    train = train if train_rows is None else train_rows
    test = test if test_rows is None else test_rows
    os.makedirs(output_dir, exist_ok=True)
    for name, rows in (("train.csv", train), ("test.csv", test)):
        with atomic_write(os.path.join(output_dir, name)) as f:
            f.write(csv_text(header, rows))
    return len(train), len(test)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output_dir", required=True)
    p.add_argument("--shared", default=SHARED, help="the folder holding chatbot-data/ChatbotData.csv")
    args = p.parse_args(argv)
    n_train, n_test = write_chatbot_split(args.output_dir, args.shared)
    print(f"wrote {n_train:,} training and {n_test:,} test rows to {args.output_dir} "
          f"(distinct questions split {1 - CHATBOT_TEST_FRACTION:.0%}/{CHATBOT_TEST_FRACTION:.0%}, "
          f"seed {CHATBOT_SPLIT_SEED})")


if __name__ == "__main__":
    main()
