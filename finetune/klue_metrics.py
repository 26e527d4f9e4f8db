"""KLUE's own metric definitions (KLUE-benchmark/KLUE-baseline, klue_baseline/metrics/functional.py).

KLUE scores some tasks differently from the seeds' suite, so these follow its code:

- KLUE-STS F1: predictions and ``real-label`` scores both cut at 3.0 (``>= 3`` is similar),
  then binary F1 of the similar class (sklearn ``average="binary"``).
- KLUE-NER entity macro F1: seqeval in ``strict`` mode with the IOB2 scheme (an entity must
  open with ``B-``), ``average="macro"`` over the entity types. KLUE flattens every sentence
  into one sequence, with its [CLS] and last-position predictions between them; here an
  ``O`` separates sentences, which is the same as long as those positions are predicted
  ``O`` and keeps an entity from running across a sentence edge.
- KLUE-NER character macro F1: sklearn macro F1 over the characters (spaces excluded, as
  KLUE drops them), with *every* label of KLUE's list as a class, ``O`` included (the
  docstring in KLUE's code says "except O tag" but its ``labels`` argument lists all 13), and
  ``zero_division=True``, so a label absent from gold and predictions counts 1. Unlike
  KLUE-baseline, its [CLS] and last-position predictions (scored against ``O``) are not
  counted: they are model artefacts, not characters.
"""
import numpy as np

from finetune.ner_metrics import check_lengths

STS_THRESHOLD = 3.0
# KLUE-baseline's KlueNERProcessor.get_labels, in its order.
KLUE_NER_LABELS = ["B-PS", "I-PS", "B-LC", "I-LC", "B-OG", "I-OG", "B-DT", "I-DT", "B-TI", "I-TI", "B-QT", "I-QT",
                   "O"]


def sts_f1(labels, predictions):
    """KLUE-STS F1 (×100): both sides cut at 3.0, F1 of the ``>= 3`` class."""
    labels = np.asarray(labels, dtype=np.float64) >= STS_THRESHOLD
    predictions = np.asarray(predictions, dtype=np.float64) >= STS_THRESHOLD
    from sklearn import metrics

    return 100.0 * metrics.f1_score(labels, predictions, average="binary", zero_division=0)


def ner_entity_macro_f1(gold, predicted):
    """KLUE-NER entity-level macro F1 (×100) of per-sentence character tag sequences."""
    check_lengths(gold, predicted)
    flat_gold, flat_predicted = [], []
    for g, p in zip(gold, predicted):
        flat_gold += list(g) + ["O"]
        flat_predicted += list(p) + ["O"]
    from seqeval import metrics as seqeval_metrics
    from seqeval.scheme import IOB2

    return 100.0 * seqeval_metrics.f1_score([flat_gold], [flat_predicted], average="macro", mode="strict",
                                            scheme=IOB2, zero_division=0)


def ner_char_macro_f1(gold, predicted):
    """KLUE-NER character-level macro F1 (×100) over KLUE's 13 labels, ``O`` included."""
    check_lengths(gold, predicted)
    flat_gold = [t for seq in gold for t in seq]
    flat_predicted = [t for seq in predicted for t in seq]
    from sklearn import metrics

    return 100.0 * metrics.f1_score(flat_gold, flat_predicted, labels=KLUE_NER_LABELS, average="macro",
                                    zero_division=1)
