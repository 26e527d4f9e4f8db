"""What a converted model's card says about its pretraining: the corpus it read (the dataset's
stats.json) and, for a continued model, the base it started from (the model dir's warm_start.json).

A continued model's own global step counts only the steps of continuation; without its base the
card reads like a short run from scratch.
"""
import json
import os

STATS_PLACES = ("stats.json", os.path.join("pretrain_tfrecords", "stats.json"))


def _read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def dataset_stats(data_dir):
    """The dataset's stats.json (beside the TFRecords, as build_pretraining_dataset.py writes it), or None."""
    if not data_dir or "://" in data_dir:
        return None
    for place in STATS_PLACES:
        stats = _read(os.path.join(data_dir, place))
        if stats is not None:
            return stats
    return None


def pretraining_data(data_dir):
    """'corpus `DIR` (a.txt, b.txt): 56,305 lines, 704,409 tokens in 41,049 examples of 64 (fill 28.8%)'."""
    if not data_dir:
        return None
    folder = f"`{os.path.basename(os.path.normpath(data_dir))}`"
    stats = dataset_stats(data_dir)
    if stats is None:
        return f"{folder} (its stats.json was not found at conversion)"
    corpus = (stats.get("args") or {}).get("corpus_dir")
    sources = sorted(stats.get("sources") or {})
    named = f"corpus `{os.path.basename(os.path.normpath(corpus))}`" if corpus else f"dataset {folder}"
    if sources:
        shown = ", ".join(f"`{s}`" for s in sources[:5]) + (f" and {len(sources) - 5} more" if len(sources) > 5 else "")
        named += f" ({shown})"
    counts = [f"{stats[key]:,} {word}" for key, word in (("sentences", "lines"), ("tokens", "tokens"))
              if isinstance(stats.get(key), int)]
    if isinstance(stats.get("examples"), int):
        fill = f", fill {stats['fill_rate']:.1%}" if isinstance(stats.get("fill_rate"), float) else ""
        counts.append(f"in {stats['examples']:,} examples of {stats.get('max_seq_length')} positions{fill}")
    if stats.get("args", {}).get("pack"):
        counts.append("packed")
    return named + (": " + ", ".join(counts) if counts else "")


def warm_start_record(model_dir):
    return _read(os.path.join(model_dir, "warm_start.json")) if model_dir and "://" not in model_dir else None


def continued_rows(model_dir, global_step):
    """(row, value) pairs naming the base model, its vocab extension and the steps of continuation;
    [] for a model pretrained from scratch."""
    record = warm_start_record(model_dir)
    if not record:
        return []
    had = (record.get("global_step") or {}).get("checkpoint_had")
    sizes = record.get("base_sizes") or {}
    order = ("hidden_size", "num_hidden_layers", "embedding_size", "vocab_size", "generator_hidden_size",
             "generator_num_hidden_layers")  # warm_start.json keeps its keys sorted
    described = ", ".join(f"{key} {sizes[key]}" for key in sorted(sizes, key=lambda k: (k not in order,
                                                                                       order.index(k) if k in order
                                                                                       else 0, k)))
    base = f"`{record.get('saved_model')}`"
    if record.get("saved_generator"):
        base += f", generator `{record['saved_generator']}`"
    rows = [("continued from (base model)", base + (f": {described}" if described else "")),
            ("steps the base had", f"{had:,}" if isinstance(had, int) else "not recorded (a transformers directory "
                                                                           "or a release without global_step)"),
            ("steps of continuation", f"{global_step:,}" if isinstance(global_step, int) else None)]
    extension = record.get("vocab_extension")
    rows.append(("vocab extension", f"{extension['new_tokens']:,} new tokens (`{os.path.basename(extension['file'])}`; "
                                    "each started as the mean of its base pieces)" if extension else "none"))
    return rows
