"""Is the evaluated model collapsed? A run that learned nothing must not read as a result.

A fine-tuned head can collapse — too high (or too low) a learning rate, too few steps, labels the
text does not predict — and still give numbers: a classifier that says one class for every
example scores a macro recall of exactly 1/k (33.33 on hate speech, 14.29 on 3i4k), a
regression head that outputs one value still gets a Pearson r from its rounding noise, and a
tagger that says ``O`` everywhere an entity F1 of 0 that looks like a weak model. ``check``
looks at one split's predictions and says which, if any:

- ``one_class``: one class for at least ``ONE_CLASS_SHARE`` (95 %) of the examples, and more
  often than the gold labels hold it (a test set of one class, predicted right, is no collapse).
- ``no_spread``: the predictions' standard deviation is under ``MIN_SPREAD_RATIO`` (5 %) of the
  gold scores'. A least-squares predictor's spread is |r| times the gold's (regression to the
  mean), so under 5 % the head explains under 0.25 % of the variance, whatever r its noise shows.
- ``only_o``: fewer non-``O`` tags than ``MIN_ENTITY_RATIO`` (5 %) of the gold's: tagging
  (nearly) only ``O``.

The thresholds, measured on this machine (2-core AMD EPYC) with a tiny ELECTRA on real data
(tests/finetune/test_collapse.py reruns the cases): collapsed runs sat at 100 % one class (hate
speech at learning rates 3e-4 to 1e-2; 3i4k at 1e-4 to 5e-2 on 512 examples), a spread ratio
under 0.0001 (KLUE-STS) and 0 to 4 % of the gold's entity tags (KLUE-NER); runs that learned,
even weakly, sat at 40 to 85 % for their most predicted class (hate speech 40 %, gold 40 %;
3i4k 50 % and 85 %, gold 30 %), a spread ratio of 0.50 (KorSTS, Spearman 14.5) and 64 % of the
gold's entity tags (KLUE-NER, char macro F1 50). 95 % and 5 % leave a margin on both sides.
Dependency parsing and question answering are not checked.
"""
import collections

import numpy as np

ONE_CLASS_SHARE = 0.95
MIN_SPREAD_RATIO = 0.05
MIN_ENTITY_RATIO = 0.05
HINT = ("its scores measure no learning (lower learning_rate, train longer, or check the labels: "
        "docs/finetuning.md, \"Collapsed runs\")")


def check(task, predictions, examples):
    """None, or ``{"kind", "reason", ...}`` when ``predictions`` of one split show a collapsed model."""
    if not predictions:
        return None
    if task.kind == "classification":
        return one_class(task.gold(examples), predictions)
    if task.kind == "regression":
        return no_spread(task.gold(examples), predictions)
    if task.kind == "token_classification":
        return only_o(*task.scored_tags(predictions, examples))
    return None


def one_class(gold, predictions):
    label, count = collections.Counter(predictions).most_common(1)[0]
    share = count / len(predictions)
    gold_share = sum(g == label for g in gold) / len(gold)
    if share < ONE_CLASS_SHARE or share <= gold_share:
        return None
    return {"kind": "one_class", "label": label, "share": round(share, 4), "gold_share": round(gold_share, 4),
            "examples": len(predictions),
            "reason": f"predicted {label!r} for {count:,} of {len(predictions):,} examples ({share:.1%}; "
                      f"{gold_share:.1%} of the gold labels): one class for nearly all"}


def no_spread(gold, predictions):
    spread, gold_spread = float(np.std(predictions)), float(np.std(gold))
    if gold_spread == 0:
        return None
    ratio = spread / gold_spread
    if ratio >= MIN_SPREAD_RATIO:
        return None
    return {"kind": "no_spread", "spread": round(spread, 6), "gold_spread": round(gold_spread, 4),
            "spread_ratio": round(ratio, 6), "examples": len(predictions),
            "reason": f"predictions' standard deviation {spread:.4f} against the gold scores' {gold_spread:.3f} "
                      f"({ratio:.1%} of it, under {MIN_SPREAD_RATIO:.0%}): a regression head with almost no "
                      "spread (its correlations are those of rounding noise)"}


def only_o(gold, predicted):
    gold_entities = sum(t != "O" for tags in gold for t in tags)
    found = sum(t != "O" for tags in predicted for t in tags)
    if gold_entities == 0:
        return None
    ratio = found / gold_entities
    if ratio >= MIN_ENTITY_RATIO:
        return None
    return {"kind": "only_o", "entity_tags": found, "gold_entity_tags": gold_entities, "ratio": round(ratio, 4),
            "reason": f"{found:,} non-O tags where the gold has {gold_entities:,} ({ratio:.1%}, under "
                      f"{MIN_ENTITY_RATIO:.0%}): tagging (nearly) only O"}


def warning_line(split, found):
    return f"{split}: the model collapsed: {found['reason']}; {HINT}"
