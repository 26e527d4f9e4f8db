"""Write docs/results.md (and its plots) from the NSMC experiment's own files; nothing by hand.

    .venv/bin/python -m experiments.make_results --work data/experiment

Reads what experiments/nsmc_experiment.py leaves under --work: the corpus, vocabulary and dataset
stats, pretrain_hparams.json, the pretraining events, eval results and log, and every finished
fine-tuning run (finetune/<task>/<model>_seed<k>/<task>_experiment/results.json). Pilot
pretraining runs kept as <work>/model_*/ get a table of their own. The block that
experiments/task_table.py writes between its markers is kept as it is.
"""
import argparse
import glob
import json
import os
import re
import statistics
import sys
import types

from configure_pretraining import HPARAMS as HPARAM_DEFAULTS
from experiments import task_table
from experiments.decontaminate import MIN_CHARS
from experiments.task_table import PUBLISHED, find_section, finished, replace_section
from util.errors import UserInputError, run_cli
from util.files import atomic_write

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = (("pretrained", "(a) pretrained here"), ("random_init", "(b) random initialisation"))
TASK_TITLES = {"nsmc": ("NSMC", "accuracy"), "korsts": ("KorSTS", "Spearman ×100")}
TARGET_GAIN = 3.0  # the target: pretrained >= random init + 3 points, NSMC end-of-training accuracy
# TensorBoard tags of pretrain/training.py (model_fn's report; ``_real``: PretrainingModel.real_token_stats).
CURVES = [("loss/total", "total loss"), ("loss/mlm", "generator MLM loss"), ("loss/disc", "discriminator loss"),
          ("accuracy/mlm_accuracy", "generator MLM accuracy"), ("accuracy/disc_accuracy", "discriminator accuracy"),
          ("accuracy/disc_auc_real", "discriminator AUC, real tokens"), ("accuracy/disc_recall_real",
          "discriminator recall, real tokens"), ("accuracy/disc_prob_std_real", "spread of P(replaced), real tokens")]
# (row, upstream's key, the real-token key) in unsup_results.txt (model/electra_model.py, eval_metrics).
EVAL_ROWS = [("discriminator AUC", "disc_auc", "disc_auc_real_tokens"),
             ("discriminator accuracy", "disc_accuracy", "disc_accuracy_real_tokens"),
             ("discriminator precision", "disc_precision", None), ("discriminator recall", "disc_recall", None),
             ("P(replaced), mean", None, "disc_prob_mean_real_tokens"), ("P(replaced), std", None,
             "disc_prob_std_real_tokens"), ("masked-LM accuracy", "masked_lm_accuracy", None),
             ("sampled masked-LM accuracy", "sampled_masked_lm_accuracy", None)]
FINETUNE_KEYS = ("num_train_epochs", "max_steps", "train_batch_size", "learning_rate", "max_seq_len",
                 "warmup_proportion", "weight_decay", "logging_steps", "save_steps", "seed")
# pretrain/monitor.py's warning line, as the step log prints it.
COLLAPSE_WARNING = re.compile(r"WARNING step (\d+): the discriminator looks collapsed")


def need(work, *parts):
    """The path of a required input; a one-line error naming it when it is not there."""
    path = os.path.join(work, *parts)
    if not os.path.isfile(path):
        raise UserInputError(f"{path}: not found (written by experiments/nsmc_experiment.py --work {work})")
    return path


def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except ValueError as e:
        raise UserInputError(f"{path}: not valid JSON ({e})") from None


def preprocess_stats(path):
    """The JSON stats line preprocess.py prints when it finishes (its log has progress lines too)."""
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f if line.startswith("{")]
    if not lines:
        raise UserInputError(f"{path}: no JSON stats line (preprocess.py prints one when it finishes)")
    return json.loads(lines[-1])


def read_unsup(path):
    """``key = value`` lines of results/unsup_results.txt, as numbers."""
    with open(path, encoding="utf-8") as f:
        pairs = [line.strip().split(" = ", 1) for line in f if " = " in line]
    return {key: float(value) for key, value in pairs}


def collapse_warnings(log_path):
    """The steps at which the collapse monitor warned, from a pretraining log."""
    with open(log_path, encoding="utf-8", errors="replace") as f:
        return [int(m.group(1)) for m in map(COLLAPSE_WARNING.search, f) if m]


def scalars(run_dir):
    """{tag: [(step, value), ...]} from the TensorBoard events directly in ``run_dir``; {} if none."""
    paths = sorted(glob.glob(os.path.join(run_dir, "events.out.tfevents.*")))
    if paths:  # without this marker TensorBoard imports all of TensorFlow to read them (see finetune/outputs.py)
        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    series = {}
    for path in paths:  # a resumed run adds a file; later points win
        acc = EventAccumulator(path, size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            series.setdefault(tag, {}).update({e.step: e.value for e in acc.Scalars(tag)})
    return {tag: sorted(points.items()) for tag, points in series.items()}


def plot(series, figures_dir):
    """One PNG per curve present; returns [(title, path)]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for tag, title in [c for c in CURVES if c[0] in series]:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot(*zip(*series[tag]))
        ax.set(title=title, xlabel="step")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = os.path.join(figures_dir, tag.replace("/", "_") + ".png")
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format="png", dpi=110)
        plt.close(fig)
        paths.append((title, path))
    return paths


def table(header, rows):
    return "\n".join(["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
                     + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def monitor_verdict(hparams, series):
    """Whether the collapse monitor would have warned on a pilot (kept without its log): its rule, on the
    batch figures logged every iterations_per_loop steps (the monitor averages over those steps)."""
    names = ("accuracy/disc_auc_real", "accuracy/disc_recall_real", "accuracy/disc_prob_std_real")
    if not all(n in series for n in names):
        return "– (no real-token curves)"
    from pretrain import monitor

    start = monitor.check_start(hparams.get("num_warmup_steps", 0))
    auc, recall, std = (dict(series[n]) for n in names)
    flagged = [s for s in sorted(auc) if s >= start and s in recall and s in std
               and monitor.diagnose(auc[s], recall[s], std[s])]
    return f"yes, at {len(flagged)} of the logged steps from {start}" if flagged else "no"


def hparam(hparams, key):
    """A run's value of ``key``; one it left out has configure_pretraining's default, not "null"."""
    return hparams[key] if key in hparams else HPARAM_DEFAULTS.get(key, (None,))[0]


def pilots_section(work, final_hparams):
    rows = []
    for run_dir in sorted(glob.glob(os.path.join(work, "model_*"))):
        if not os.path.isfile(os.path.join(run_dir, "pretrain_hparams.json")):
            continue
        hparams, series = load_json(os.path.join(run_dir, "pretrain_hparams.json")), scalars(run_dir)
        last = lambda tag: f"{series[tag][-1][1]:.3f}" if tag in series else "–"  # noqa: E731
        keys = sorted((set(hparams) | set(final_hparams)) - {"learning_rate", "num_warmup_steps", "vocab_file"})
        other = ", ".join(f"{k} {json.dumps(hparam(hparams, k))}" for k in keys
                          if hparam(hparams, k) != hparam(final_hparams, k))
        rows.append([f"`{os.path.basename(run_dir)}`", hparams.get("learning_rate"), hparams.get("num_warmup_steps"),
                     other or "–", max((s for points in series.values() for s, _ in points), default="–"),
                     last("accuracy/disc_auc_real"), last("loss/disc"),
                     monitor_verdict(hparams, series)])
    if not rows:
        return ""
    return ("### Pilot runs\nEarlier pretraining runs kept beside the model (`model_*/`): their settings where they "
            "differ from the run above, the step they reached, and the last logged batch figures.\n\n"
            + table(["run", "learning rate", "warmup", "other differences", "steps", "disc AUC, real tokens",
                     "disc loss", "monitor would warn"], rows) + "\n")


def run_scores(results):
    """One run's test figures: at the end of training, by the published protocol, dev-selected."""
    metric = results["primary_metric"]
    # The evaluations marked final score the selected best model; the end of training is the last before them.
    during = [e for e in results["evaluations"] if e["split"] == "test" and not e.get("final")]
    published = results.get("published") or {}
    return {"end": during[-1]["metrics"][metric] if during else None, "published": published.get("score"),
            "published_split": published.get("split"),
            "dev_selected": ((results.get("dev_selected") or {}).get("test") or {}).get(metric)}


def finetune_runs(work, task, seeds):
    """{model: [scores of each finished seed]}; runs still going or never started are left out."""
    runs = {}
    for model, _ in MODELS:
        for seed in range(1, seeds + 1):
            run_dir = os.path.join(work, "finetune", task, f"{model}_seed{seed}", f"{task}_experiment")
            results = finished(os.path.join(run_dir, "results.json"))
            if results:
                runs.setdefault(model, []).append(dict(run_scores(results), seed=seed, dir=run_dir))
    return runs


def seed_values(runs, model, key):
    """The figure ``key`` of each seed of one model that has it."""
    return [r[key] for r in runs.get(model, []) if r[key] is not None]


def cell(values):
    return f"{task_table.cell(values)} (n={len(values)})" if values else "–"


def gain(runs, key):
    a, b = (seed_values(runs, model, key) for model, _ in MODELS)
    return statistics.mean(a) - statistics.mean(b) if a and b else None


def settings_line(task, runs):
    """The fine-tuning settings, read from each run's saved config (best_model/finetune_config.json)."""
    paths = [os.path.join(r["dir"], "best_model", "finetune_config.json") for rs in runs.values() for r in rs]
    configs = [load_json(p) for p in paths if os.path.isfile(p)]
    if not configs:  # no run saved one: the settings the experiment passes
        from experiments.nsmc_experiment import FINETUNE

        return ("Settings (from `nsmc_experiment.FINETUNE`; no run saved its config): "
                + ", ".join(f"{k} {v}" for k, v in FINETUNE[task]["set"].items()) + ".")
    values = {k: sorted({str(c[k]) for c in configs if k in c}) for k in FINETUNE_KEYS}
    return (f"Settings (from the {len(configs)} runs' `best_model/finetune_config.json`): "
            + ", ".join(f"{k} {' / '.join(v)}" for k, v in values.items() if v) + ".")


def task_section(task, runs, exp_args):
    title, metric = TASK_TITLES.get(task, (task, "primary metric"))
    split = next((r["published_split"] for rs in runs.values() for r in rs if r["published_split"]), "test")
    names = [("end", "end of training, test"), ("published", f"published protocol, {split}"),
             ("dev_selected", "dev-selected model, test")]
    columns = [(k, name) for k, name in names if any(r[k] is not None for rs in runs.values() for r in rs)] or names[:1]
    data = (f"the first {exp_args['nsmc_train']:,} reviews of `ratings_train.txt` and the first "
            f"{exp_args['nsmc_test']:,} of `ratings_test.txt` (no dev file)" if task == "nsmc"
            else "`sts-train.tsv`, `sts-dev.tsv` and `sts-test.tsv` whole")
    rows = [[label] + [cell(seed_values(runs, model, k)) for k, _ in columns] for model, label in MODELS]
    gains = [gain(runs, k) for k, _ in columns]
    rows.append(["gain (a) − (b)"] + ["–" if g is None else f"**{g:+.2f}**" for g in gains])
    return (f"## Fine-tuning on {title}\nData: {data}. {settings_line(task, runs)}\n\n{title} {metric}, median "
            f"[min–max; interquartile range past 5 seeds] · mean ± sample std over the seeds (n: finished runs, of {exp_args['seeds']} seeds):\n\n"
            + table(["model"] + [name for _, name in columns], rows) + "\n")


def verdict(runs):
    value = gain(runs, "end")
    target = (f"The issue's target, pretrained at least {TARGET_GAIN:g} points above random initialisation on "
              "NSMC's end-of-training test accuracy: ")
    if value is None:
        return target + "not measured (no finished NSMC runs of both models)."
    return target + ("met" if value >= TARGET_GAIN else "**missed**") + f": the gain is {value:+.2f} points."


def pretraining_section(work, hparams, dataset, timings, rel, figures_dir):
    metrics = read_unsup(need(work, "model", "results", "unsup_results.txt"))
    warnings = collapse_warnings(need(work, "logs", "pretrain.log"))
    series = scalars(os.path.join(work, "model"))
    steps = int(metrics.get("global_step", hparams["num_train_steps"]))  # the step evaluated
    seen = steps * hparams["train_batch_size"]
    fmt = lambda key: f"{metrics[key]:.3f}" if key in metrics else "–"  # noqa: E731
    curves = [[title, f"{series[tag][0][1]:.3f} (step {series[tag][0][0]})",
               f"{series[tag][-1][1]:.3f} (step {series[tag][-1][0]})"] for tag, title in CURVES if tag in series]
    images = "\n".join(f"![{title}]({rel(path)})" for title, path in plot(series, figures_dir))
    minutes = f", in {timings['pretrain'] / 60:.1f} minutes (evaluation included)" if "pretrain" in timings else ""
    shown = ", ".join(f"`{k}` {json.dumps(v)}" for k, v in hparams.items() if k != "vocab_file")
    monitor = (f"warned {len(warnings)} times, at steps {', '.join(map(str, warnings))}" if warnings
               else "did not warn")
    return f"""## Pretraining
Hyperparameters (`pretrain_hparams.json`): {shown}.

{steps:,} steps of {hparams['train_batch_size']}{minutes}: {seen:,} examples, {seen / dataset['examples']:.0%} of
one pass over the dataset's {dataset['examples']:,}; the published Dialog-KoELECTRA-Small saw 700k steps of 512.

Evaluation on {hparams.get('num_eval_steps', '?')} batches (`model/results/unsup_results.txt`): upstream's figures
(its AUC counts padding as certain originals) beside the same over real tokens only (no padding, [CLS], [SEP]):

{table(['metric', 'upstream', 'real tokens'], [[n, fmt(up), fmt(real)] for n, up, real in EVAL_ROWS])}

The collapse monitor (pretrain/monitor.py) {monitor} (`logs/pretrain.log`).

{table(['curve (training batches)', 'first', 'last'], curves or [['(no TensorBoard events in model/)', '–', '–']])}

{images}

{pilots_section(work, hparams)}"""


def intent_heldout_note(sources):
    """The corpus line on the intent test sets removed (absent from corpora staged before that)."""
    if "dropped_3i4k_test_lines" not in sources:
        return ""
    return (f" (minus the intent tasks' test utterances: {sources['dropped_3i4k_test_lines']:,} 3i4k lines and "
            f"{sources['dropped_chatbot_test_rows']:,} chatbot rows whose text is in 3i4k's `fci_test.txt` or the "
            "chatbot test split)")


def benchmark_note(sources):
    """The corpus line on benchmark text removed (absent from corpora staged before that)."""
    dropped = sources.get("dropped_benchmark_text")
    if dropped is None:
        return ""
    where = ", ".join(f"`{name}` {n:,}" for name, n in sorted(dropped.items())) or "none found"
    return (f". Every line holding a sentence of a benchmark's evaluation split ({MIN_CHARS} characters or more, "
            f"verbatim; experiments/decontaminate.py) was dropped: {sum(dropped.values()):,} lines ({where})")


def build(work, output):
    """The whole markdown text from the files under ``work``."""
    sources, vocab_config, dataset, hparams, timings, exp_args = [load_json(need(work, *name.split("/"))) for name in (
        "corpus_sources.json", "vocab/tokenizer_config.json", "tfrecords/stats.json", "pretrain_hparams.json",
        "timings.json", "experiment_args.json")]
    stats = preprocess_stats(need(work, "logs", "preprocess.log"))
    with open(need(work, "vocab", "vocab.txt"), encoding="utf-8") as f:
        vocab_size = sum(1 for _ in f)
    out_dir = os.path.dirname(os.path.abspath(output))
    pretraining = pretraining_section(work, hparams, dataset, timings, lambda p: os.path.relpath(p, out_dir),
                                      os.path.join(out_dir, "figures"))
    tasks = [t for t in exp_args["tasks"].split(",") if t]
    runs = {task: finetune_runs(work, task, exp_args["seeds"]) for task in tasks}
    finetuning = "\n".join(task_section(task, runs[task], exp_args) for task in tasks)
    command = " ".join(f"--{k} {v}" for k, v in exp_args.items() if v is not None and v is not False)
    published = [[name, figures.get("nsmc", "–"), figures.get("korsts", "–")] for name, figures in PUBLISHED]
    sources_rows = [[name, f"`../shared/data/{s['path']}`", s["license"]] for name, s in sources["sources"].items()]
    finetune_seconds = sum(v for k, v in timings.items() if k.startswith("finetune_"))
    stage_times = ", ".join([f"{k} {v:.0f}" for k, v in timings.items() if not k.startswith("finetune_")]
                            + [f"fine-tuning {finetune_seconds:.0f} in all"])
    return f"""# Results: pretraining on real Korean text, measured on NSMC and KorSTS

Generated by `python -m experiments.make_results --work {work}` from the files written by
`python -m experiments.nsmc_experiment {command}`; nothing here is typed by hand.
The machine: the 2-core CPU this project develops and tests on.

## Corpus
NSMC's crawled reviews with every review of NSMC's test set removed ({sources['dropped_test_id']:,} by review id,
{sources['dropped_test_text']:,} more whose text equals a test document), {sources['reviews_kept']:,} reviews kept,
plus dialogue and written text{intent_heldout_note(sources)}{benchmark_note(sources)}:

{table(['source', 'path', 'license'], sources_rows)}

After `preprocess.py`: {stats['files']} files, {stats['sentences_out']:,} sentences in {stats['documents']:,} documents
({stats['duplicates_dropped']:,} duplicate sentences and {stats['characters_removed']:,} characters removed).
Vocabulary: {vocab_size:,} entries, `{vocab_config.get('tokenizer_type')}`,
{'lower-cased' if vocab_config.get('do_lower_case') else 'cased'}. Pretraining dataset: {dataset['examples']:,} examples
of {dataset['max_seq_length']} tokens, {dataset['tokens']:,} tokens, UNK rate {dataset['unk_rate']:.3%}.

{pretraining}
{finetuning}
{verdict(runs.get('nsmc', {}))}

"End of training" is the last test evaluation before the final ones (no checkpoint selection); "published
protocol" is the best of the evaluations every `logging_steps`, as the published code reports it (it selects
on test when that is the split evaluated); "dev-selected" is the test score of the model chosen on dev.

For context, the seeds' published test scores (full training sets, far larger corpora and budgets):

{table(['model', 'NSMC accuracy', 'KorSTS Spearman'], published)}

Time per stage (s): {stage_times}.
"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="data/experiment")
    p.add_argument("--output", default=os.path.join(ROOT, "docs", "results.md"))
    args = p.parse_args(argv)
    text = build(args.work, args.output)
    old = open(args.output, encoding="utf-8").read() if os.path.isfile(args.output) else ""
    # Blocks other scripts write from runs of their own: task_table.py's table, continued_results.py's.
    for marker in ("task_table", "continued_pretraining"):
        kept = find_section(old, marker)
        if kept:
            text = replace_section(text, kept, marker)
    with atomic_write(args.output) as f:
        f.write(text)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    run_cli(main)
