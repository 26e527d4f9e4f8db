"""Metrics against values computed by hand."""
import pytest

from finetune import metrics


def test_accuracy():
    assert metrics.accuracy(["0", "1", "1", "0"], ["0", "1", "0", "0"]) == {"accuracy": 75.0}


def test_macro_f1_by_hand():
    gold = ["none", "none", "hate", "offensive", "hate", "none"]
    pred = ["none", "hate", "hate", "none", "hate", "none"]
    # none: tp 2, fp 1, fn 1 -> P 2/3 R 2/3 F1 2/3; hate: tp 2, fp 1, fn 0 -> P 2/3 R 1 F1 0.8;
    # offensive: tp 0 -> 0. Macro F1 = (2/3 + 0.8 + 0) / 3.
    result = metrics.macro_f1(gold, pred, label_ids=["none", "offensive", "hate"])
    assert result["macro_f1"] == pytest.approx(100 * (2 / 3 + 0.8) / 3)
    assert result["macro_precision"] == pytest.approx(100 * (2 / 3 + 0 + 2 / 3) / 3)
    assert result["macro_recall"] == pytest.approx(100 * (2 / 3 + 0 + 1) / 3)
    assert result["accuracy"] == pytest.approx(100 * 4 / 6)


def test_correlation_by_hand():
    gold = [1.0, 2.0, 3.0, 4.0]
    pred = [1.0, 3.0, 2.0, 4.0]
    # Spearman: rank differences d = (0, 1, -1, 0), 1 - 6*2 / (4*15) = 0.8.
    # Pearson: deviations (-1.5, -.5, .5, 1.5) and (-1.5, .5, -.5, 1.5): 4 / 5 = 0.8.
    result = metrics.correlation(gold, pred)
    assert result["spearman"] == pytest.approx(80.0)
    assert result["pearson"] == pytest.approx(80.0)


def test_correlation_of_constant_predictions_is_zero():
    assert metrics.correlation([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]) == {"spearman": 0.0, "pearson": 0.0}
