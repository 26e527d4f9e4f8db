"""The figures the torch loop logs and evaluates, defined as the TF backend's are.

``batch_accuracies``: model/electra_model.PretrainingModel.accuracies() from ``ElectraPretrainer``'s
output dict, under the TF backend's names, so both backends log the same figures (step log,
TensorBoard, the collapse monitor). ``disc_auc_real`` is the rank (Mann-Whitney) AUC of the
discriminator's probabilities over the text's own tokens (no padding, [CLS] or [SEP]); ties fall
in index order, so a constant output scores about 0.5. ``disc_prob_std_real`` is their spread: a
collapsed discriminator gives every token the same value.

``Evaluation``: upstream ELECTRA's unsupervised metrics streamed over the evaluation batches as
``PretrainingModel.eval_metrics`` does with ``tf.metrics`` (accuracy and mean as weighted sums,
AUC over tf.metrics.auc's 200 thresholds with its epsilons), so results/unsup_results.txt holds
the same keys with the same meanings from either backend.
"""
import numpy as np
import torch

# tf.metrics.auc(num_thresholds=200): 198 inner thresholds, plus one just below 0 and one just above 1.
AUC_THRESHOLDS = np.array([0.0 - 1e-7] + [(i + 1) / 199 for i in range(198)] + [1.0 + 1e-7], dtype=np.float32)
AUC_EPSILON = 1e-6


@torch.no_grad()
def batch_accuracies(out):
    """{name: float32 scalar tensor}: mlm_accuracy, and with a discriminator its accuracies and real-token stats."""
    weights = out["masked_lm_weights"]
    correct = (out["masked_lm_preds"] == out["masked_lm_ids"]).float()
    result = {"mlm_accuracy": (correct * weights).sum() / (weights.sum() + 1e-6)}
    if "disc_probs" not in out:
        return result
    mask = out["input_mask"].float()
    real = out["real_tokens"].float()
    correct = (out["disc_preds"] == out["disc_labels"]).float()
    result["disc_accuracy"] = (correct * mask).sum() / (mask.sum() + 1e-6)
    result["disc_accuracy_real"] = (correct * real).sum() / (real.sum() + 1e-6)
    result.update(real_token_stats(out["disc_probs"].float(), out["disc_labels"].float(),
                                   out["disc_preds"].float(), real))
    return result


def real_token_stats(probs, labels, preds, real):
    real, probs = real.flatten(), probs.flatten()
    labels, preds = labels.flatten() * real, preds.flatten() * real
    n_real, n_pos = real.sum(), labels.sum()
    n_neg = n_real - n_pos
    # Other tokens sort below every real one (probabilities are >= 0), so subtracting their
    # count gives ranks 1..n_real among the real tokens.
    scores = torch.where(real > 0, probs, -torch.ones_like(probs))
    ranks = torch.argsort(torch.argsort(scores, stable=True), stable=True).float() + 1.0
    ranks = ranks - (real.numel() - n_real)
    auc = ((ranks * labels).sum() - n_pos * (n_pos + 1.0) / 2.0) / torch.clamp(n_pos * n_neg, min=1.0)
    mean = (probs * real).sum() / torch.clamp(n_real, min=1.0)
    std = torch.sqrt((real * (probs - mean) ** 2).sum() / torch.clamp(n_real, min=1.0))
    true_pos = (preds * labels).sum()
    return {"disc_auc_real": auc, "disc_prob_std_real": std,
            "disc_precision_real": true_pos / torch.clamp(preds.sum(), min=1.0),
            "disc_recall_real": true_pos / torch.clamp(n_pos, min=1.0)}


class StreamingAUC:
    """tf.metrics.auc (ROC, trapezoidal): weighted counts above each threshold, summed over batches."""

    def __init__(self):
        self.positive = np.zeros(len(AUC_THRESHOLDS) + 1)
        self.negative = np.zeros(len(AUC_THRESHOLDS) + 1)

    def update(self, labels, probs, weights=None):
        labels = np.asarray(labels).reshape(-1) > 0
        probs = np.asarray(probs, dtype=np.float32).reshape(-1)
        weights = np.ones_like(probs, dtype=np.float64) if weights is None else np.asarray(weights).reshape(-1)
        # bucket b = how many thresholds a prediction is above (TF counts prediction > threshold)
        buckets = np.searchsorted(AUC_THRESHOLDS, probs, side="left")
        size = len(AUC_THRESHOLDS) + 1
        self.positive += np.bincount(buckets, weights * labels, minlength=size)
        self.negative += np.bincount(buckets, weights * ~labels, minlength=size)

    def result(self):
        # above[j]: weight of the predictions above threshold j = the buckets after j
        tp = np.cumsum(self.positive[::-1])[::-1][1:]
        fp = np.cumsum(self.negative[::-1])[::-1][1:]
        fn, tn = self.positive.sum() - tp, self.negative.sum() - fp
        recall = (tp + AUC_EPSILON) / (tp + fn + AUC_EPSILON)
        fp_rate = fp / (fp + tn + AUC_EPSILON)
        return float(np.sum((fp_rate[:-1] - fp_rate[1:]) * (recall[:-1] + recall[1:]) / 2.0))


class WeightedMean:
    """tf.metrics.mean / accuracy: sum(weight * value) / sum(weight) over every batch."""

    def __init__(self):
        self.total, self.weight = 0.0, 0.0

    def update(self, values, weights=None):
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        weights = np.ones_like(values) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
        self.total += float((values * weights).sum())
        self.weight += float(weights.sum())

    def result(self):
        return self.total / self.weight if self.weight else 0.0


class Evaluation:
    """model/electra_model.PretrainingModel.eval_metrics over ``update(out)`` calls, plus the mean loss."""

    def __init__(self, disc_weight):
        self.disc_weight = disc_weight
        self.metrics = {}

    def _add(self, name, kind, *args):
        self.metrics.setdefault(name, kind()).update(*args)

    def update(self, out):
        t = {k: v.detach().float().cpu().numpy() for k, v in out.items() if torch.is_tensor(v)}
        self._add("loss", WeightedMean, t["total_loss"])
        ids, weights = t["masked_lm_ids"], t["masked_lm_weights"]
        self._add("masked_lm_accuracy", WeightedMean, ids == t["masked_lm_preds"], weights)
        self._add("masked_lm_loss", WeightedMean, t["mlm_example_loss"], weights)
        if "disc_probs" not in t:
            return
        self._add("sampled_masked_lm_accuracy", WeightedMean, ids == t["sampled_ids"], weights)
        if self.disc_weight <= 0:
            return
        mask, real = t["input_mask"], t["real_tokens"]
        labels, preds, probs = t["disc_labels"], t["disc_preds"], t["disc_probs"]
        correct = labels == preds
        self._add("disc_loss", WeightedMean, t["disc_example_loss"])
        self._add("disc_auc", StreamingAUC, labels * mask, probs * mask)
        self._add("disc_accuracy", WeightedMean, correct, mask)
        self._add("disc_precision", WeightedMean, correct, preds * mask)
        self._add("disc_recall", WeightedMean, correct, labels * mask)
        self._add("disc_auc_real_tokens", StreamingAUC, labels, probs, real)
        self._add("disc_accuracy_real_tokens", WeightedMean, correct, real)
        self._add("disc_prob_mean_real_tokens", WeightedMean, probs, real)
        self._add("disc_prob_sq_mean_real_tokens", WeightedMean, probs * probs, real)

    def results(self):
        return {name: metric.result() for name, metric in self.metrics.items()}
