"""Entity-level NER scores: a thin layer over seqeval.

Naver's tags put the position last (``PER-B``, ``PER-I``) and the 2018 challenge files
write ``PER_B`` and ``-``; seqeval reads ``B-PER``. Converting to that one spelling
first lets every tag set be scored by the same call. seqeval runs in its default
(conlleval-compatible) mode, the mode KoELECTRA and Dialog-KoELECTRA report: an
``I-X`` that follows ``O`` or another type opens a new entity.
"""
import re


_SUFFIX_TAG = re.compile(r"^(?P<type>.+)[-_](?P<pos>[BI])$")
_PREFIX_TAG = re.compile(r"^(?P<pos>[BIES])-(?P<type>.+)$")


def to_bio(tag):
    """``PER-B``/``PER_B`` -> ``B-PER``; ``B-PS`` unchanged; ``O`` and ``-`` -> ``O``."""
    if tag in ("O", "-"):
        return "O"
    if _PREFIX_TAG.match(tag):
        return tag
    m = _SUFFIX_TAG.match(tag)
    if m:
        return f"{m['pos']}-{m['type']}"
    raise ValueError(f"not a BIO tag: {tag!r}")


def _bio_sequences(sequences):
    return [[to_bio(t) for t in seq] for seq in sequences]


def check_lengths(gold, predicted):
    """As many predicted sequences as gold ones, each as long as its gold one."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sequences but {len(predicted)} predicted")
    for i, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise ValueError(f"sequence {i}: {len(g)} gold tags but {len(p)} predicted")


def entity_scores(gold, predicted):
    """Entity-level precision, recall and F1 (×100) of tag sequences against gold ones."""
    check_lengths(gold, predicted)
    from seqeval import metrics as seqeval_metrics

    gold, predicted = _bio_sequences(gold), _bio_sequences(predicted)
    # No predicted (or no gold) entity scores 0 rather than warning at every early evaluation.
    return {
        "precision": 100.0 * seqeval_metrics.precision_score(gold, predicted, zero_division=0),
        "recall": 100.0 * seqeval_metrics.recall_score(gold, predicted, zero_division=0),
        "f1": 100.0 * seqeval_metrics.f1_score(gold, predicted, zero_division=0),
    }


def report(gold, predicted):
    """seqeval's per-type table (precision, recall, F1, support) as text."""
    from seqeval import metrics as seqeval_metrics

    return seqeval_metrics.classification_report(
        _bio_sequences(gold), _bio_sequences(predicted), digits=4, zero_division=0
    )


def entities(tags):
    """``[(type, first, last), ...]`` (inclusive indices) of one tag sequence."""
    # seqeval (and through it scikit-learn, seconds to import) is loaded on first use only.
    from seqeval.metrics.sequence_labeling import get_entities

    return get_entities([to_bio(t) for t in tags])
