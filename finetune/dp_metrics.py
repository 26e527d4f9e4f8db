"""KLUE-DP scores: KLUE's own UAS/LAS (macro F1) and plain attachment accuracy.

KLUE-baseline (``klue_baseline/metrics/functional.py``, ``klue_dp_uas_macro_f1`` and
``klue_dp_las_macro_f1``) does not count attached words. Over every word of every sentence:
- UAS is scikit-learn's macro F1 with the head *index* as the class (0 = root, 1 = the
  first word, ...): each head position seen in gold or prediction is one class.
- LAS is macro F1 over relation types, after two rewrites: every relation whose id in
  KLUE's label order (``KLUE_DP_LABELS``) is 15 or more (VP_CMP onwards, the rare ones) is one
  class "others" (so predicting VP_OBJ for VP_CMP counts as right), and the predicted
  relation of each word whose head is wrong becomes a class of its own (PAD, -2) that gold
  never has, which scores 0 and is averaged in like any other class.
Classes are those present in gold or predictions; an undefined precision or recall is 0,
as scikit-learn's default gives (we pass ``zero_division=0`` only to silence its warning).
Beside them, the plain scores every dependency paper reports: ``uas`` = % of words with
the right head, ``las`` = % with the right head and the right relation.
"""
import numpy as np

# KLUE-baseline's get_dep_labels(), in its order: ids are KLUE's, and the "others" rule is by id.
KLUE_DP_LABELS = (
    "NP", "NP_AJT", "VP", "NP_SBJ", "VP_MOD", "NP_OBJ", "AP", "NP_CNJ", "NP_MOD", "VNP", "DP", "VP_AJT",
    "VNP_MOD", "NP_CMP", "VP_SBJ", "VP_CMP", "VP_OBJ", "VNP_CMP", "AP_MOD", "X_AJT", "VP_CNJ", "VNP_AJT",
    "IP", "X", "X_SBJ", "VNP_OBJ", "VNP_SBJ", "X_OBJ", "AP_AJT", "L", "X_MOD", "X_CNJ", "VNP_CNJ", "X_CMP",
    "AP_CMP", "AP_SBJ", "R", "NP_SVJ",
)
OTHERS_FROM = 15  # KLUE's others_idx
OTHERS, WRONG_HEAD = -3, -2  # KLUE's class ids for "others" and for a relation under a wrong head


def _flat(sequences):
    return np.asarray([x for sequence in sequences for x in sequence], dtype=np.int64)


def klue_relation_classes(gold_relations, pred_relations, head_correct):
    """KLUE's LAS classes: relation ids, rare ones folded into OTHERS, wrong heads' into WRONG_HEAD."""
    gold = np.where(gold_relations >= OTHERS_FROM, OTHERS, gold_relations)
    pred = np.where(pred_relations >= OTHERS_FROM, OTHERS, pred_relations)
    return gold, np.where(head_correct, pred, WRONG_HEAD)


def attachment_scores(gold_heads, gold_relations, pred_heads, pred_relations):
    """KLUE's ``uas_macro_f1``/``las_macro_f1`` and plain ``uas``/``las`` (all ×100).

    Each argument is a list of sentences, each a list with one entry per scored word: heads
    as ints (0 = root), relations as ids in ``KLUE_DP_LABELS`` order.
    """
    gold_heads, pred_heads = _flat(gold_heads), _flat(pred_heads)
    gold_relations, pred_relations = _flat(gold_relations), _flat(pred_relations)
    if not (len(gold_heads) == len(pred_heads) == len(gold_relations) == len(pred_relations)):
        raise ValueError("gold and predicted attachments differ in length")
    if len(gold_heads) == 0:
        return {"uas_macro_f1": 0.0, "las_macro_f1": 0.0, "uas": 0.0, "las": 0.0}
    head_correct = gold_heads == pred_heads
    gold_classes, pred_classes = klue_relation_classes(gold_relations, pred_relations, head_correct)
    from sklearn import metrics

    f1 = lambda gold, pred: 100.0 * metrics.f1_score(gold, pred, average="macro", zero_division=0)  # noqa: E731
    return {
        "uas_macro_f1": f1(gold_heads, pred_heads),
        "las_macro_f1": f1(gold_classes, pred_classes),
        "uas": 100.0 * float(head_correct.mean()),
        "las": 100.0 * float((head_correct & (gold_relations == pred_relations)).mean()),
    }
