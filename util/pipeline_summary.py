"""The table printed at the end of `make demo`: what each stage produced, read from its files.

    python -m util.pipeline_summary --work data/demo --finetune_dir data/demo/finetune/nsmc_sample
"""
import argparse
import glob
import json
import os

from util.files import atomic_write


def _read_json(path):
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _scalar_series(model_dir, tag):
    """(first, last) value of a TensorBoard scalar across the model dir's event files."""
    import logging

    # TensorBoard imports TensorFlow, whose C++ INFO lines (oneDNN, cpu_feature_guard) and the
    # accumulator's notes on repeated graph events are noise under the summary table.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    points = []
    for events in glob.glob(os.path.join(model_dir, "**", "events.out.tfevents.*"), recursive=True):
        acc = EventAccumulator(events, size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags().get("scalars", []):
            points += [(e.step, e.value) for e in acc.Scalars(tag)]
    if not points:
        return None
    points.sort()
    return points[0], points[-1]


def _unsup_results(model_dir):
    path = os.path.join(model_dir, "results", "unsup_results.txt")
    if not os.path.exists(path):
        return {}
    values = {}
    for line in open(path, encoding="utf-8"):
        if " = " in line:
            key, value = line.strip().split(" = ", 1)
            values[key] = value
    return values


def collect(work, finetune_dir):
    rows = []
    vocab = os.path.join(work, "vocab", "vocab.txt")
    if os.path.exists(vocab):
        config = _read_json(os.path.join(work, "vocab", "tokenizer_config.json")) or {}
        size = sum(1 for _ in open(vocab, encoding="utf-8"))
        extension = _read_json(os.path.join(work, "vocab", "vocab_extension.json"))
        added = f", extended: {extension['num_new']} new tokens in [unusedN] slots" if extension else ""
        rows.append(("vocab", f"{size:,} entries ({config.get('tokenizer_type', 'wordpiece')}){added}"))
    stats = _read_json(os.path.join(work, "tfrecords", "stats.json"))
    if stats:
        rows.append(("pretraining examples", f"{stats['examples']:,} × {stats['max_seq_length']} tokens "
                                             f"from {stats['documents']:,} documents, UNK rate {stats['unk_rate']:.2%}"))
    model_dir = os.path.join(work, "model")
    warm = _read_json(os.path.join(model_dir, "warm_start.json"))
    if warm:  # a continued run: what it started from, so the table does not read as from scratch
        fresh = ", ".join(sorted(warm.get("fresh") or {})) or "none"
        rows.append(("continued from", f"{warm.get('saved_model')}: {len(warm.get('loaded') or [])} variables "
                                       f"loaded, started fresh: {fresh}"))
    loss = _scalar_series(model_dir, "loss/total") if os.path.isdir(model_dir) else None
    if loss:
        (s0, v0), (s1, v1) = loss
        rows.append(("pretraining loss", f"{v0:.3f} (step {s0}) → {v1:.3f} (step {s1})"))
    unsup = _unsup_results(model_dir)
    if unsup:
        # Accuracy alone flatters a discriminator that always answers "original" (most tokens
        # are); precision and recall on the replaced tokens show whether it learned anything.
        # Upstream's AUC counts padding as sure "original" tokens; the real-token figures do not.
        rows.append(("discriminator (eval)",
                     f"real tokens: AUC {float(unsup.get('disc_auc_real_tokens', 'nan')):.3f}, "
                     f"accuracy {float(unsup.get('disc_accuracy_real_tokens', 'nan')):.3f}, "
                     f"output spread {float(unsup.get('disc_prob_std_real_tokens', 'nan')):.3f}; "
                     f"precision {float(unsup.get('disc_precision', 'nan')):.3f}, "
                     f"recall {float(unsup.get('disc_recall', 'nan')):.3f}; upstream's AUC "
                     f"{float(unsup.get('disc_auc', 'nan')):.3f}; MLM accuracy {float(unsup['masked_lm_accuracy']):.3f}"
                     + ("; it calls every token original (found no replaced token): not learned"
                        if float(unsup.get('disc_recall', 'nan')) < 0.005 else "")))
    parity = _read_json(os.path.join(work, "pytorch", "discriminator", "parity.json"))
    if parity:
        shown = ", ".join(f"{name} {err:.1e}" for name, err in sorted(parity.get("max_relative_error", {}).items()))
        rows.append(("conversion parity (max rel. error)", shown))
    results = _read_json(os.path.join(finetune_dir, "results.json")) if finetune_dir else None
    if results and results.get("best"):
        best = results["best"]
        rows.append((f"fine-tune {results['task']}", f"{results['primary_metric']} {best['score']:.2f} "
                                                     f"({best['split']}, step {best['step']})"))
    timings = _read_json(os.path.join(work, "timings.json")) or {}
    if timings:
        rows.append(("time per stage", ", ".join(f"{k} {v:.0f}s" for k, v in timings.items())
                     + f"; total {sum(timings.values()):.0f}s"))
    return rows


def render(rows):
    lines = ["| stage | result |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True, help="the pipeline's working directory (WORK in the Makefile)")
    p.add_argument("--finetune_dir", default=None, help="ckpt_dir/<task> of the fine-tuning run")
    args = p.parse_args()
    table = render(collect(args.work, args.finetune_dir))
    with atomic_write(os.path.join(args.work, "summary.md")) as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    main()
