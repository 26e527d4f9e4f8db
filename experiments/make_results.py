"""Write docs/results.md (and its plots) from the NSMC experiment's own files; nothing by hand.

    .venv/bin/python -m experiments.make_results --work data/experiment
"""
import argparse
import glob
import json
import os

from util.files import atomic_write

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The seeds' published NSMC test accuracies, for context (different data, sizes and budgets).
PUBLISHED = [("Dialog-KoELECTRA-Small (22 GB, 700k steps)", 90.01), ("KoELECTRA-Small-v3", 89.36),
             ("DistilKoBERT", 88.60)]
CURVES = [("loss/total", "total loss"), ("loss/mlm", "generator MLM loss"), ("loss/disc", "discriminator loss"),
          ("accuracy/mlm_accuracy", "generator MLM accuracy"), ("accuracy/disc_accuracy", "discriminator accuracy")]


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def scalars(model_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    series = {}
    for events in sorted(glob.glob(os.path.join(model_dir, "events.out.tfevents.*"))):
        acc = EventAccumulator(events, size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            series.setdefault(tag, {}).update({e.step: e.value for e in acc.Scalars(tag)})
    return {tag: sorted(points.items()) for tag, points in series.items()}


def plot(series, figures_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(figures_dir, exist_ok=True)
    paths = []
    for tag, title in CURVES:
        if tag not in series:
            continue
        steps, values = zip(*series[tag])
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot(steps, values)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = os.path.join(figures_dir, tag.replace("/", "_") + ".png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append((title, path))
    return paths


def abandoned_runs(work):
    """Earlier pretraining runs kept beside the model as ``model_<why>/`` (events + pretrain_hparams.json)."""
    rows = []
    for run_dir in sorted(glob.glob(os.path.join(work, "model_*"))):
        series = scalars(run_dir)
        if "loss/disc" not in series:
            continue
        hparams = load_json(os.path.join(run_dir, "pretrain_hparams.json"))
        disc, acc = series["loss/disc"], series.get("accuracy/disc_accuracy", [(0, float("nan"))])
        rows.append(f"| `{os.path.basename(run_dir)}` | {hparams['learning_rate']} | {hparams['num_warmup_steps']} | "
                    f"{disc[-1][0]} | {min(v for _, v in disc):.3f} → {disc[-1][1]:.3f} | {acc[-1][1]:.3f} |")
    if not rows:
        return ""
    return ("Runs stopped and kept for the record (same model and data; the step they reached, the "
            "discriminator loss at its lowest → last, and the last discriminator accuracy):\n\n"
            "| run | learning rate | warmup | steps | disc loss | disc accuracy |\n|---|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n")


def finetune_result(work, name):
    results = load_json(os.path.join(work, "finetune", name, "nsmc_experiment", "results.json"))
    test = [e for e in results["evaluations"] if e["split"] == "test"]
    last = max(test, key=lambda e: e["step"])
    return {"last": last["metrics"]["accuracy"], "last_step": last["step"], "best": results["best"]["score"],
            "best_step": results["best"]["step"], "evaluations": len(test)}


def unsup(model_dir):
    values = {}
    for line in open(os.path.join(model_dir, "results", "unsup_results.txt"), encoding="utf-8"):
        key, value = line.strip().split(" = ")
        values[key] = float(value)
    return values


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="data/experiment")
    p.add_argument("--output", default=os.path.join(ROOT, "docs", "results.md"))
    args = p.parse_args()
    work = args.work
    sources = load_json(os.path.join(work, "corpus_sources.json"))
    exp_args = load_json(os.path.join(work, "experiment_args.json"))
    dataset = load_json(os.path.join(work, "tfrecords", "stats.json"))
    hparams = load_json(os.path.join(work, "pretrain_hparams.json"))
    timings = load_json(os.path.join(work, "timings.json"))
    preprocess_stats = next(json.loads(line) for line in open(os.path.join(work, "logs", "preprocess.log"),
                                                              encoding="utf-8") if line.startswith("{"))
    vocab_config = load_json(os.path.join(work, "vocab", "tokenizer_config.json"))
    vocab_size = sum(1 for _ in open(os.path.join(work, "vocab", "vocab.txt"), encoding="utf-8"))
    series = scalars(os.path.join(work, "model"))
    figures = plot(series, os.path.join(os.path.dirname(args.output), "figures"))
    metrics = unsup(os.path.join(work, "model"))
    a, b = finetune_result(work, "pretrained"), finetune_result(work, "random_init")
    rel = lambda path: os.path.relpath(path, os.path.dirname(args.output))  # noqa: E731

    source_rows = "\n".join(f"| {name} | `../shared/data/{s['path']}` | {s['license']} |"
                            for name, s in sources["sources"].items())
    curve_rows = "\n".join(f"![{title}]({rel(path)})" for title, path in figures)
    first_last = "\n".join(
        f"| {title} | {series[tag][0][1]:.3f} (step {series[tag][0][0]}) | {series[tag][-1][1]:.3f} (step {series[tag][-1][0]}) |"
        for tag, title in CURVES if tag in series)
    gain_last, gain_best = a["last"] - b["last"], a["best"] - b["best"]
    seen = hparams["num_train_steps"] * hparams["train_batch_size"]
    verdict = ("met" if gain_last >= 3.0 else "**missed**") + f": the gain at the end of training is {gain_last:+.2f} points"
    published = "\n".join(f"| {name} | {score:.2f} |" for name, score in PUBLISHED)
    text = f"""# Results: pretraining on real Korean text, measured on NSMC

Generated by `python -m experiments.make_results --work {work}` from the files written by
`python -m experiments.nsmc_experiment --work {work} --budget_minutes {exp_args['budget_minutes']}`;
nothing here is typed by hand. The machine: the 2-core CPU this project develops and tests on.

## Corpus
NSMC's crawled reviews with every review of NSMC's test set removed ({sources['dropped_test_id']:,} by
review id, {sources['dropped_test_text']:,} more whose text equals a test document), {sources['reviews_kept']:,}
reviews kept, plus dialogue and written text:

| source | path | license |
|---|---|---|
{source_rows}

After `preprocess.py`: {preprocess_stats['files']} files, {preprocess_stats['sentences_out']:,} sentences in
{preprocess_stats['documents']:,} documents ({preprocess_stats['duplicates_dropped']:,} duplicate sentences and
{preprocess_stats['characters_removed']:,} characters removed). Vocabulary: {vocab_size:,} entries,
`{vocab_config['tokenizer_type']}`, cased. Pretraining dataset: {dataset['examples']:,} examples of
{dataset['max_seq_length']} tokens, {dataset['tokens']:,} tokens, UNK rate {dataset['unk_rate']:.3%}.

## Pretraining
ELECTRA at Small width — hidden {hparams['hidden_size']}, embedding {hparams['embedding_size']},
{hparams['num_attention_heads']} heads, {hparams['num_hidden_layers']} layers (reduced from 12 to fit the budget),
generator {hparams['generator_hidden_size']} of the discriminator's width, sequence length
{hparams['max_seq_length']}, batch {hparams['train_batch_size']}, learning rate {hparams['learning_rate']} —
for {hparams['num_train_steps']:,} steps, sized from a measured {hparams['calibrated_examples_per_second']} examples/s to a
{hparams['budget_minutes']}-minute budget (it took {timings.get('pretrain', float('nan')) / 60:.1f} minutes, evaluation included).
That is {seen:,} examples, {seen / dataset['examples']:.0%} of one pass over the dataset; the published
Dialog-KoELECTRA-Small saw 700k steps of 512.

| curve | first | last |
|---|---|---|
{first_last}

{curve_rows}

Evaluation on {hparams['num_eval_steps']} batches (`results/unsup_results.txt`): masked-LM accuracy
{metrics['masked_lm_accuracy']:.3f}, sampled masked-LM accuracy {metrics.get('sampled_masked_lm_accuracy', float('nan')):.3f},
discriminator accuracy {metrics['disc_accuracy']:.3f}, precision {metrics['disc_precision']:.3f},
recall {metrics['disc_recall']:.3f}, AUC {metrics['disc_auc']:.3f}.

{abandoned_runs(work)}
## Fine-tuning on NSMC
The first {exp_args['nsmc_train']:,} reviews of `ratings_train.txt` and the first {exp_args['nsmc_test']:,} of
`ratings_test.txt` (a fixed subset, to fit the CPU), {exp_args['finetune_epochs']} epochs, batch 32, learning
rate 1e-4, max length 64, seed {exp_args['seed']}, for (a) the converted discriminator and (b) the same
architecture and tokenizer from random initialisation. "Last" is the test accuracy at the end of
training (no checkpoint selection); "best" is the best of the {a['evaluations']} evaluations made during
training, which selects on the test set as the published configs do.

| model | NSMC accuracy, last | best |
|---|---|---|
| (a) pretrained here | {a['last']:.2f} | {a['best']:.2f} |
| (b) random initialisation | {b['last']:.2f} | {b['best']:.2f} |
| gain (a) − (b) | **{gain_last:+.2f}** points | {gain_best:+.2f} points |

The issue's target, pretrained at least 3 points above random initialisation: {verdict}.

For context, the seeds' published NSMC test accuracies (full training set, far larger corpora and budgets):

| model | NSMC accuracy |
|---|---|
{published}

Time per stage (s): {', '.join(f'{k} {v:.0f}' for k, v in timings.items())}.
"""
    with atomic_write(args.output) as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
