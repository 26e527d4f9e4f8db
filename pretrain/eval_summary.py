"""The pre-training evaluation, said in the order that tells whether the discriminator learned.

Upstream's ``disc_auc`` and ``disc_accuracy`` count padding as tokens the discriminator
surely calls original, which alone reads ~0.85 on short examples: a run that learned nothing
showed AUC 0.887 and accuracy 0.855 beside precision 0 and recall 0. So the real-token
figures (padding, [CLS] and [SEP] excluded) come first, and a discriminator that calls
every token original is said in words. Both backends write results/unsup_results.txt here.
"""
import os

from util.files import atomic_write

# Below this recall the discriminator finds (next to) none of the replaced tokens.
NOTHING_FOUND_RECALL = 0.005


def never_calls_replaced(results):
    """True when the discriminator called (nearly) every token original."""
    recall = results.get("disc_recall")
    return recall is not None and float(recall) < NOTHING_FOUND_RECALL


def headline(results):
    """The lines to read first, or [] for a run without a discriminator."""
    if "disc_auc_real_tokens" not in results:
        return []
    get = lambda key: float(results.get(key, float("nan")))  # noqa: E731
    lines = [f"discriminator on real tokens (no padding, [CLS] or [SEP]): AUC {get('disc_auc_real_tokens'):.3f}, "
             f"accuracy {get('disc_accuracy_real_tokens'):.3f}, precision {get('disc_precision'):.3f}, "
             f"recall {get('disc_recall'):.3f}, output spread {get('disc_prob_std_real_tokens'):.3f}"]
    if never_calls_replaced(results):
        lines.append("the discriminator calls every token original: it found none of the replaced tokens, so its "
                     "accuracy is only the share of original tokens; it has not learned (docs/pretraining.md, "
                     "'When the discriminator collapses')")
    lines.append(f"upstream's figures, which count padding as sure originals: disc_auc {get('disc_auc'):.3f}, "
                 f"disc_accuracy {get('disc_accuracy'):.3f}")
    return lines


def summary_lines(results):
    """The headline, then every metric as ``key = value`` (as in unsup_results.txt)."""
    return headline(results) + [f"  {key} = {results[key]}" for key in sorted(results)]


def with_real_token_spread(results):
    """The spread of the discriminator's probabilities over real tokens, from the two streamed means."""
    if "disc_prob_sq_mean_real_tokens" in results:
        mean, sq_mean = results["disc_prob_mean_real_tokens"], results.pop("disc_prob_sq_mean_real_tokens")
        results["disc_prob_std_real_tokens"] = max(sq_mean - mean * mean, 0.0) ** 0.5
    return results


def write_results(path, results):
    """``key = value`` lines, sorted, as upstream's unsup_results.txt."""
    text = "".join(f"{key} = {results[key]}\n" for key in sorted(results))
    if "://" in path:  # gs:// on Cloud TPU (the TF backend)
        import tensorflow as tf

        tf.io.gfile.makedirs(os.path.dirname(path))
        with tf.io.gfile.GFile(path, "w") as f:
            f.write(text)
        return
    with atomic_write(path) as f:
        f.write(text)
