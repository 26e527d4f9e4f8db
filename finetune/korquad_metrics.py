"""KorQuAD 1.0 exact match and F1, scored as the official ``evaluate-v1.0.py`` scores them.

The official script is SQuAD v1.1's with two Korean changes, reproduced here:
- normalisation replaces quotes and brackets (' " 《 》 < > 〈 〉 ( ) ‘ ’) by spaces, lower-cases,
  deletes ASCII punctuation (``string.punctuation``) and collapses whitespace; there is no
  English article removal;
- F1 counts common *characters* (spaces excluded), not words, since a Korean word carries
  its particles (``서울에서`` vs ``서울``).
Each question takes the best score over its gold answers; totals are percentages.
"""
import collections
import string

# Replaced by a space before punctuation removal, so "《토지》의" keeps its word break.
_SPACED_SYMBOLS = str.maketrans({c: " " for c in "'\"《》<>〈〉()‘’"})
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text):
    text = text.translate(_SPACED_SYMBOLS).lower().translate(_PUNCTUATION)
    return " ".join(text.split())


def exact_match(prediction, gold):
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction, gold):
    """Character-level F1 between the normalised strings, spaces not counted."""
    pred_chars = list(normalize_answer(prediction).replace(" ", ""))
    gold_chars = list(normalize_answer(gold).replace(" ", ""))
    common = collections.Counter(pred_chars) & collections.Counter(gold_chars)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_chars)
    recall = same / len(gold_chars)
    return 2 * precision * recall / (precision + recall)


def best_over_golds(metric, prediction, golds):
    return max(metric(prediction, g) for g in golds)


def evaluate(golds, predictions):
    """``golds``: one list of answer texts per question; ``predictions``: one text per question.

    Returns ``{"exact_match", "f1"}`` as percentages over all questions.
    """
    if len(golds) != len(predictions):
        raise ValueError(f"{len(golds)} questions but {len(predictions)} predictions")
    if not golds:
        return {"exact_match": 0.0, "f1": 0.0}
    em = sum(best_over_golds(exact_match, p, g) for p, g in zip(predictions, golds))
    f = sum(best_over_golds(f1, p, g) for p, g in zip(predictions, golds))
    return {"exact_match": 100.0 * em / len(golds), "f1": 100.0 * f / len(golds)}
