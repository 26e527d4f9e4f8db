"""Classification and regression metrics, as percentages like the seeds' tables."""
import numpy as np


def _sklearn():
    # Imported when a metric is computed: prediction (finetune.inference) needs no sklearn or scipy.
    from sklearn import metrics

    return metrics


def _scipy_stats():
    from scipy import stats

    return stats


def accuracy(labels, predictions):
    """{"accuracy": % of exact matches}."""
    return {"accuracy": 100.0 * _sklearn().accuracy_score(labels, predictions)}


def macro_f1(labels, predictions, label_ids=None):
    """Macro-averaged F1/precision/recall (×100) over ``label_ids``, plus accuracy.

    Classes absent from both gold and predictions count as 0, as sklearn does with
    ``zero_division=0``, so a model that never predicts a class is penalised for it.
    """
    kwargs = {"labels": label_ids, "average": "macro", "zero_division": 0}
    return {
        "macro_f1": 100.0 * _sklearn().f1_score(labels, predictions, **kwargs),
        "macro_precision": 100.0 * _sklearn().precision_score(labels, predictions, **kwargs),
        "macro_recall": 100.0 * _sklearn().recall_score(labels, predictions, **kwargs),
        **accuracy(labels, predictions),
    }


def correlation(labels, predictions):
    """Spearman and Pearson correlation ×100 (0 when either side is constant)."""
    labels = np.asarray(labels, dtype=np.float64)
    predictions = np.asarray(predictions, dtype=np.float64)
    if len(labels) < 2 or np.ptp(labels) == 0 or np.ptp(predictions) == 0:
        return {"spearman": 0.0, "pearson": 0.0}
    return {
        "spearman": 100.0 * float(_scipy_stats().spearmanr(labels, predictions)[0]),
        "pearson": 100.0 * float(_scipy_stats().pearsonr(labels, predictions)[0]),
    }
