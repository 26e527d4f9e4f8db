"""finetune/klue_metrics.py equals KLUE's definitions, checked against implementations written here.

Each metric is compared with (a) a hand-made case whose answer is worked out in the comment,
(b) a plain-Python count of KLUE's definition on random predictions, and where KLUE-baseline's
call is one library call, (c) that call as KLUE-baseline makes it (index labels, flattening).
"""
import random
import types

import numpy as np
import pytest
from scipy import stats
from seqeval.metrics import f1_score as seqeval_f1
from seqeval.scheme import IOB2
from sklearn.metrics import f1_score

from finetune import klue_metrics
from finetune.klue_metrics import KLUE_NER_LABELS

TYPES = ["PS", "LC", "OG", "DT", "TI", "QT"]


def test_sts_f1_hand_made():
    # labels >= 3: 1 1 0 0 1 ; predictions >= 3: 1 0 1 0 1 -> TP 2, FP 1, FN 1 -> F1 2/3
    labels = [4.0, 3.0, 2.9, 0.5, 3.5]
    predictions = [3.2, 2.99, 3.0, 1.0, 4.9]
    assert klue_metrics.sts_f1(labels, predictions) == pytest.approx(200 / 3)


def test_sts_f1_and_pearson_match_independent_counts():
    rng = np.random.default_rng(0)
    labels = rng.uniform(0, 5, 300)
    predictions = labels + rng.normal(0, 1.2, 300)
    gold, pred = labels >= 3, predictions >= 3
    tp, fp, fn = np.sum(gold & pred), np.sum(~gold & pred), np.sum(gold & ~pred)
    assert klue_metrics.sts_f1(labels, predictions) == pytest.approx(100 * 2 * tp / (2 * tp + fp + fn))
    from finetune.tasks.klue import KlueSTS
    from finetune.tasks.sequence_classification import Example

    examples = [Example(str(i), "a", "b", float(v), i) for i, v in enumerate(labels)]
    scores = KlueSTS(types.SimpleNamespace()).compute_metrics(list(predictions), examples)
    assert scores["pearson"] == pytest.approx(100 * stats.pearsonr(predictions, labels)[0])
    assert scores["f1"] == pytest.approx(klue_metrics.sts_f1(labels, predictions))


def strict_entities(tags):
    """(type, start, end) of strict IOB2 entities: B-X opens, I-X continues, anything else closes."""
    found, current = [], None
    for i, tag in enumerate(list(tags) + ["O"]):
        if current and tag == "I-" + current[0]:
            continue
        if current:
            found.append((current[0], current[1], i))
            current = None
        if tag.startswith("B-"):
            current = (tag[2:], i)
    return found


def entity_macro_f1_by_hand(gold, predicted):
    per_type = {}
    for g, p in zip(gold, predicted):
        gold_set, pred_set = set(strict_entities(g)), set(strict_entities(p))
        for kind in {e[0] for e in gold_set | pred_set}:
            counts = per_type.setdefault(kind, [0, 0, 0])
            counts[0] += len({e for e in gold_set & pred_set if e[0] == kind})
            counts[1] += len({e for e in pred_set if e[0] == kind})
            counts[2] += len({e for e in gold_set if e[0] == kind})
    scores = []
    for tp, n_pred, n_gold in per_type.values():
        scores.append(0.0 if tp == 0 else 2 * tp / (n_pred + n_gold))
    return 100 * sum(scores) / len(scores)


def char_macro_f1_by_hand(gold, predicted):
    flat = list(zip([t for s in gold for t in s], [t for s in predicted for t in s]))
    scores = []
    for label in KLUE_NER_LABELS:
        tp = sum(g == label and p == label for g, p in flat)
        fp = sum(g != label and p == label for g, p in flat)
        fn = sum(g == label and p != label for g, p in flat)
        scores.append(1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn))
    return 100 * sum(scores) / len(scores)


def test_ner_hand_made_cases():
    # PS found, LC missed, OG spurious: per-type F1 1, 0, 0 -> 33.33.
    gold = [["B-PS", "I-PS", "O", "B-LC"]]
    assert klue_metrics.ner_entity_macro_f1(gold, [["B-PS", "I-PS", "O", "B-OG"]]) == pytest.approx(100 / 3)
    # Strict IOB2: an entity opening with I- is not an entity (conlleval mode would count it).
    assert klue_metrics.ner_entity_macro_f1([["B-PS", "I-PS"]], [["I-PS", "I-PS"]]) == 0.0
    # Sentences do not run into each other: the I-PS opening the second sentence does not
    # lengthen the first sentence's entity.
    two = [["O", "B-PS", "I-PS"], ["O", "O"]]
    assert klue_metrics.ner_entity_macro_f1(two, [["O", "B-PS", "I-PS"], ["I-PS", "O"]]) == 100.0
    # Characters: B-PS F1 1, I-PS 0 (missed), O 2*2/(2*2+1) = 0.8, the 10 absent labels 1 each.
    chars = klue_metrics.ner_char_macro_f1([["B-PS", "I-PS", "O", "O"]], [["B-PS", "O", "O", "O"]])
    assert chars == pytest.approx(100 * (1 + 0 + 0.8 + 10) / 13)


def random_tags(rng, n):
    tags, previous = [], "O"
    for _ in range(n):
        r = rng.random()
        if r < 0.6:
            tag = "O"
        elif r < 0.8 and previous != "O":
            tag = "I-" + previous[2:]
        elif r < 0.9:
            tag = "B-" + rng.choice(TYPES)
        else:
            tag = rng.choice(["I-", "B-"]) + rng.choice(TYPES)
        tags.append(tag)
        previous = tag
    return tags


def perturb(rng, tags):
    return [t if rng.random() < 0.8 else rng.choice(KLUE_NER_LABELS) for t in tags]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ner_metrics_match_independent_implementations(seed):
    rng = random.Random(seed)
    gold = [random_tags(rng, rng.randint(1, 30)) for _ in range(60)]
    predicted = [perturb(rng, g) for g in gold]
    entity = klue_metrics.ner_entity_macro_f1(gold, predicted)
    chars = klue_metrics.ner_char_macro_f1(gold, predicted)
    assert entity == pytest.approx(entity_macro_f1_by_hand(gold, predicted))
    assert chars == pytest.approx(char_macro_f1_by_hand(gold, predicted))
    # KLUE-baseline's own calls: one flattened sequence with O between sentences (its [CLS]/[SEP]
    # positions), label ids into its label list, sklearn's macro F1 with zero_division=True.
    flat_gold = [t for g in gold for t in ["O"] + g + ["O"]]
    flat_pred = [t for p in predicted for t in ["O"] + p + ["O"]]
    assert entity == pytest.approx(100 * seqeval_f1([flat_gold], [flat_pred], average="macro", mode="strict",
                                                    scheme=IOB2))
    ids = {label: i for i, label in enumerate(KLUE_NER_LABELS)}
    klue_chars = 100 * f1_score([ids[t] for g in gold for t in g], [ids[t] for p in predicted for t in p],
                                labels=list(range(len(KLUE_NER_LABELS))), average="macro", zero_division=True)
    assert chars == pytest.approx(klue_chars)


def test_ner_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="sequence 0"):
        klue_metrics.ner_char_macro_f1([["O", "O"]], [["O"]])
