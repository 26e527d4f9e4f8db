"""KLUE-DP predictions for finetune.inference.Predictor: each word's head and relation.

Words are the text split at whitespace, as KLUE's eojeols. They go through the task's own
``build_features`` and ``postprocess`` (finetune/tasks/klue_dp.py), so a parse is the one the
trainer scored; the heads and relations fed in are placeholders (no gold at prediction time).
"""
import numpy as np


def predict_parses(task, tokenizer, max_seq_len, run, texts):
    """One ``{"words": [{"index", "word", "head", "relation"}, ...]}`` per text (``"warning"`` when
    the text was cut at ``max_seq_len``). ``run(features)`` gives the model's per-token outputs."""
    from finetune.tasks.klue_dp import LABELS, DpExample

    examples = []
    for i, text in enumerate(texts):
        words = text.split()
        examples.append(DpExample(str(i), words, [0] * len(words), [LABELS[0]] * len(words), i))
    features = task.build_features(examples, tokenizer, max_seq_len, "predict")
    rows = run(features)
    width = max(len(r["heads"]) for r in rows)
    stacked = {}
    for name in ("heads", "relations"):
        stacked[name] = np.zeros((len(rows), width), dtype=np.int64)
        for k, row in enumerate(rows):
            stacked[name][k, :len(row[name])] = row[name]
    results = []
    for example, (heads, relations) in zip(examples, task.postprocess(stacked, features, examples)):
        result = {"words": [{"index": i, "word": word, "head": head, "relation": relation}
                            for i, (word, head, relation) in enumerate(zip(example.words, heads, relations), 1)]}
        if len(heads) < len(example.words):
            result["warning"] = (f"longer than max_seq_len {max_seq_len} tokens: the last "
                                 f"{len(example.words) - len(heads)} words were not parsed")
        results.append(result)
    return results
