"""KLUE-DP scores against a hand-worked case and an independent copy of KLUE's definition."""
import random
import warnings

import numpy as np
import pytest
import sklearn.metrics

from finetune.dp_metrics import KLUE_DP_LABELS, attachment_scores

ID = {r: i for i, r in enumerate(KLUE_DP_LABELS)}


def klue_reference(gold_heads, gold_relations, pred_heads, pred_relations):
    """KLUE-baseline's klue_dp_uas_macro_f1 / klue_dp_las_macro_f1, step for step, on its
    padded batch layout: rows padded with -1, -1 entries deleted, ids >= 15 -> -3, and the
    predicted type of every wrong head -> -2 (PAD), then scikit-learn's macro F1 with its
    default zero_division."""
    width = max(len(s) for s in gold_heads) + 2
    pad = lambda rows: np.array([list(r) + [-1] * (width - len(r)) for r in rows])  # noqa: E731
    # Predictions at padded positions are whatever the model emitted there; KLUE drops them by the labels.
    garbage = lambda rows: np.array([list(r) + [7] * (width - len(r)) for r in rows])  # noqa: E731
    head_labels, type_labels = pad(gold_heads).flatten(), pad(gold_relations).flatten()
    head_preds, type_preds = garbage(pred_heads).flatten(), garbage(pred_relations).flatten()
    index = [i for i, label in enumerate(head_labels) if label == -1]
    head_preds, head_labels = np.delete(head_preds, index), np.delete(head_labels, index)
    index = [i for i, label in enumerate(type_labels) if label == -1]
    type_preds, type_labels = np.delete(type_preds, index), np.delete(type_labels, index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        uas = sklearn.metrics.f1_score(head_labels.tolist(), head_preds.tolist(), average="macro") * 100.0
        for i, (pred, label) in enumerate(zip(type_preds, type_labels)):
            if pred >= 15:
                type_preds[i] = -3
            if label >= 15:
                type_labels[i] = -3
        for idx in np.nonzero(np.invert(np.equal(head_preds, head_labels))):
            type_preds[idx] = -2
        las = sklearn.metrics.f1_score(type_labels.tolist(), type_preds.tolist(), average="macro") * 100.0
    return uas, las


def test_hand_worked_case():
    # Sentence 1: gold heads 2 0 2, predicted 2 0 1 (word 3's head wrong), relations all right.
    # Sentence 2: heads right; VP_CMP predicted VP_OBJ (both KLUE "others", ids 15 and 16), VP predicted VNP.
    gold_heads, pred_heads = [[2, 0, 2], [2, 0]], [[2, 0, 1], [2, 0]]
    gold_rel = [[ID["NP_SBJ"], ID["VP"], ID["NP_OBJ"]], [ID["VP_CMP"], ID["VP"]]]
    pred_rel = [[ID["NP_SBJ"], ID["VP"], ID["NP_OBJ"]], [ID["VP_OBJ"], ID["VNP"]]]
    scores = attachment_scores(gold_heads, gold_rel, pred_heads, pred_rel)
    # UAS macro F1, classes = head indices {0, 1, 2}; gold 2 0 2 2 0, predicted 2 0 1 2 0:
    # 0: tp 2 -> F1 1; 1: tp 0, fp 1 -> 0; 2: tp 2, fp 0, fn 1 -> P 1, R 2/3, F1 0.8. Mean 1.8 / 3 = 60.
    assert scores["uas_macro_f1"] == pytest.approx(60.0)
    # LAS classes: gold NP_SBJ(3) VP(2) NP_OBJ(5) others(-3) VP(2);
    # predicted 3 2 PAD(-2, word 3's head is wrong) others(-3) VNP(9).
    # -3: 1; -2: 0 (never gold); 2: tp 1, fn 1 -> 2/3; 3: 1; 5: 0 (missed); 9: 0 (never gold).
    # Mean (1 + 0 + 2/3 + 1 + 0 + 0) / 6 = 4/9.
    assert scores["las_macro_f1"] == pytest.approx(400.0 / 9)
    # Plain: 4 of 5 heads right; right head and relation: words 1 and 2 only.
    assert scores["uas"] == pytest.approx(80.0)
    assert scores["las"] == pytest.approx(40.0)
    assert klue_reference(gold_heads, gold_rel, pred_heads, pred_rel) == pytest.approx(
        (scores["uas_macro_f1"], scores["las_macro_f1"]))


@pytest.mark.parametrize("seed", range(5))
def test_equals_klue_reference_on_random_parses(seed):
    rng = random.Random(seed)
    gold_heads, gold_rel, pred_heads, pred_rel = [], [], [], []
    for _ in range(rng.randint(1, 30)):
        n = rng.randint(1, 12)
        heads = [rng.randint(0, n) for _ in range(n)]
        rels = [rng.choice([rng.randrange(15), rng.randrange(len(KLUE_DP_LABELS))]) for _ in range(n)]
        gold_heads.append(heads)
        gold_rel.append(rels)
        # A model that is mostly right, so every kind of case occurs.
        pred_heads.append([h if rng.random() < 0.7 else rng.randint(0, n) for h in heads])
        pred_rel.append([r if rng.random() < 0.7 else rng.randrange(len(KLUE_DP_LABELS)) for r in rels])
    scores = attachment_scores(gold_heads, gold_rel, pred_heads, pred_rel)
    uas, las = klue_reference(gold_heads, gold_rel, pred_heads, pred_rel)
    assert scores["uas_macro_f1"] == pytest.approx(uas)
    assert scores["las_macro_f1"] == pytest.approx(las)
    flat = lambda rows: np.array([x for r in rows for x in r])  # noqa: E731
    right = flat(gold_heads) == flat(pred_heads)
    assert scores["uas"] == pytest.approx(100 * right.mean())
    assert scores["las"] == pytest.approx(100 * (right & (flat(gold_rel) == flat(pred_rel))).mean())


def test_perfect_parse_scores_100():
    heads, rels = [[2, 0], [0, 1, 1]], [[ID["NP_SBJ"], ID["VP"]], [ID["VP"], ID["NP_OBJ"], ID["X_SBJ"]]]
    assert attachment_scores(heads, rels, heads, rels) == pytest.approx(
        {"uas_macro_f1": 100.0, "las_macro_f1": 100.0, "uas": 100.0, "las": 100.0})
