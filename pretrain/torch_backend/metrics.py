"""Batch accuracies for the step log and TensorBoard: model/electra_model.PretrainingModel.accuracies().

Computed from ``ElectraPretrainer``'s output dict, under the TF backend's names, so both backends
log the same figures. ``disc_auc_real`` is the rank (Mann-Whitney) AUC of the discriminator's
probabilities over the text's own tokens (no padding, [CLS] or [SEP]); ties fall in index order,
so a constant output scores about 0.5. ``disc_prob_std_real`` is their spread: a collapsed
discriminator gives every token the same value.
"""
import torch


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
