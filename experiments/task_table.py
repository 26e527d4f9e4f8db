"""One table across every task family and several seeds, for a model and for random initialisation.

    python -m experiments.task_table --model_dir data/pytorch/dialog-koelectra-small-discriminator \
        --seeds 5 --train_limit 2000 --eval_limit 1000 --work data/task_table --results_md docs/results.md

Fine-tunes the model on NSMC, Question Pair, Korean Hate Speech, KorNLI, KorSTS, PAWS-X, KorQuAD,
KLUE-NLI, KLUE-STS, KLUE-NER (NER: Naver NER's data is not redistributable), KLUE-DP and the 3i4k and
Chatbot intent sets from ../shared/data (experiments/task_data.py
lays the capped splits out), each with its shipped ``conf/<task>/electra-small.yaml`` — the
published settings — plus only the overrides the table's notes list. Every (model, task, seed)
run writes ``<work>/runs/<model>/<task>/seed<N>/``; a run whose ``results.json`` already holds its
final evaluation is skipped, so an interrupted table continues where it stopped. The table
(per cell the median over the seeds with its spread, and mean ± sample std, of the metric each
published table reports, on the split named) is generated from those files, beside the seeds' published small-model rows.
"""
import argparse
import filecmp
import json
import os
import shutil
import sys

from experiments.decontaminate import HEADERLESS, MIN_CHARS, corpus_sentences, filter_file, task_files
# find_section, replace_section and cell are imported from here by the other experiments too.
from experiments.markdown_sections import find_section, put_section, replace_section  # noqa: F401
from experiments.seed_cells import cell, runs_note, spread  # noqa: F401
from experiments.task_data import NOT_AT_HAND, TASKS, lay_out
from util.files import atomic_write, write_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED_BASE = 42  # the published YAMLs' seed; seed k of a table is 42 + k
# task -> (column title, metric keys in results.json as the seeds report them)
METRICS = {
    "nsmc": ("NSMC (acc)", ("accuracy",)),
    "question-pair": ("Question Pair (acc)", ("accuracy",)),
    "hate-speech": ("Hate Speech (macro F1)", ("macro_f1",)),
    "kornli": ("KorNLI (acc)", ("accuracy",)),
    "korsts": ("KorSTS (spearman)", ("spearman",)),
    "paws": ("PAWS-X (acc)", ("accuracy",)),
    "korquad": ("KorQuAD (EM / F1)", ("exact_match", "f1")),
    "klue-nli": ("KLUE-NLI (acc)", ("accuracy",)),
    "klue-sts": ("KLUE-STS (Pearson r / F1)", ("pearson", "f1")),
    "klue-ner": ("KLUE-NER (entity / char macro F1)", ("entity_macro_f1", "char_macro_f1")),
    # KLUE's UAS and LAS are macro F1 over heads and relation types (finetune/dp_metrics.py);
    # plain attachment accuracy beside them, as every other parser reports.
    "klue-dp": ("KLUE-DP (UAS / LAS macro F1 as KLUE; plain UAS / LAS)",
                ("uas_macro_f1", "las_macro_f1", "uas", "las")),
    "intent-3i4k": ("3i4k intent (acc / macro F1)", ("accuracy", "macro_f1")),
    "intent-chatbot": ("Chatbot intent (acc / macro F1)", ("accuracy", "macro_f1")),
}
# The seeds' small-model rows: 000 = Dialog-KoELECTRA's README, 001 = KoELECTRA's README. Their
# Naver NER figures have no column (its data is not at hand) and are quoted in the table's notes.
PUBLISHED = [
    ("Dialog-KoELECTRA-Small (seed 000)", {"nsmc": "90.01", "question-pair": "94.99", "hate-speech": "68.26",
                                           "naver-ner": "85.51", "kornli": "78.54", "korsts": "78.96"}),
    ("KoELECTRA-Small-v3 (seed 001)", {"nsmc": "89.36", "question-pair": "94.85", "hate-speech": "63.07",
                                       "naver-ner": "85.40", "kornli": "78.60", "korsts": "80.79",
                                       "paws": "77.45", "korquad": "82.11 / 91.13"}),
    ("DistilKoBERT (seed 001)", {"nsmc": "88.60", "question-pair": "92.48", "hate-speech": "60.72",
                                 "naver-ner": "84.65", "kornli": "72.00", "korsts": "72.59", "paws": "60.50",
                                 "korquad": "54.40 / 77.97"}),
    # KLUE's README, "Baseline Scores" (KLUE-benchmark/KLUE @ 3efd987, also ../shared/data/klue-dev/README.md):
    # base-size models fine-tuned on KLUE's full training sets; the README does not say which split.
    # Its DP columns are headed just "UAS"/"LAS": taken as KLUE's own definitions (KLUE-baseline's
    # uas/las macro F1, finetune/dp_metrics.py), so they fill the macro F1 slots; no plain accuracy ("–").
    ("koELECTRA-base (KLUE README)", {"klue-nli": "85.63", "klue-sts": "92.46 / 84.84", "klue-ner": "86.11 / 92.56",
                                      "klue-dp": "92.90 / 87.77 / – / –"}),
    ("KLUE-BERT-base (KLUE README)", {"klue-nli": "81.63", "klue-sts": "90.85 / 82.84", "klue-ner": "83.97 / 91.39",
                                      "klue-dp": "89.96 / 88.05 / – / –"}),
    ("KLUE-RoBERTa-base (KLUE README)", {"klue-nli": "84.83", "klue-sts": "92.50 / 85.40",
                                         "klue-ner": "84.60 / 91.44", "klue-dp": "93.04 / 88.32 / – / –"}),
]
DEFAULT_SEEDS = 5


def random_init_copy(pretrained_dir, target_dir, seed=20240):
    """The same architecture and tokenizer files as ``pretrained_dir``, freshly initialised."""
    import torch
    from transformers import AutoConfig, AutoModel

    if os.path.isfile(os.path.join(target_dir, "config.json")):
        return target_dir
    torch.manual_seed(seed)
    config = AutoConfig.from_pretrained(pretrained_dir, local_files_only=True)
    model = AutoModel.from_config(config)
    tmp = target_dir + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    for name in os.listdir(pretrained_dir):
        if name.startswith(("vocab", "tokenizer", "special_tokens")):
            shutil.copy(os.path.join(pretrained_dir, name), tmp)
    os.replace(tmp, target_dir)
    return target_dir


def shown_path(model_dir):
    """A model directory as a row names it: relative to the project when inside it (the paths its
    experiments write), else as given."""
    path = os.path.abspath(model_dir)
    return os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else os.path.normpath(model_dir)


def finished(results_path):
    """A results.json that holds the run's final evaluation (written last by the trainer)."""
    if not os.path.isfile(results_path):
        return None
    with open(results_path, encoding="utf-8") as f:
        results = json.load(f)
    return results if any(e.get("final") for e in results.get("evaluations", [])) else None


def run_one(task, model_dir, data_dir, data, run_dir, seed, overrides, new_runs=True):
    """Fine-tune once (or reuse the finished run); returns (results, effective config dict).
    results is None for an unfinished run when ``new_runs`` is false."""
    from finetune.config import load_config
    from finetune.tasks import task_config_defaults
    from finetune.trainer import run

    values = {"data_dir": data_dir, "ckpt_dir": run_dir, "model_name_or_path": model_dir, "seed": seed,
              **data.files, **data.overrides, **overrides}
    config = load_config(os.path.join(ROOT, "conf", task, "electra-small.yaml"),
                         overrides=values, extra_defaults=task_config_defaults())
    results_path = os.path.join(run_dir, config.task, "results.json")
    results = finished(results_path)
    if results is None and not new_runs:
        print(f"== {task} seed {seed}: not run yet, left out of the table", flush=True)
    elif results is None:
        shutil.rmtree(os.path.join(run_dir, config.task), ignore_errors=True)  # an interrupted run restarts
        print(f"== {task} seed {seed}: {model_dir}", flush=True)
        results = run(config)
    else:
        print(f"== {task} seed {seed}: done before, {results_path}", flush=True)
    return results, config.as_dict()


def final_metrics(results, split):
    for evaluation in results["evaluations"]:
        if evaluation.get("final") and evaluation["split"] == split:
            return evaluation["metrics"]
    raise KeyError(f"no final {split} evaluation in results.json")


def published_overrides(config_values, task):
    """The YAML keys a run changed from the shipped config, other than paths and the seed."""
    from finetune.config import read_yaml

    yaml_values, _ = read_yaml(os.path.join(ROOT, "conf", task, "electra-small.yaml"))
    skip = {"data_dir", "ckpt_dir", "config_dir", "model_name_or_path", "seed", "train_file", "dev_file",
            "test_file"}
    changed = {}
    for key, value in config_values.items():
        if key in skip or key not in yaml_values:
            continue
        if str(yaml_values[key]).lower() != str(value).lower() and not _same_number(yaml_values[key], value):
            changed[key] = (yaml_values[key], value)
    return changed


def _same_number(a, b):
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def build_table(rows, notes, args, collapsed=None):
    """The markdown section: our rows, the published rows, then the notes. ``collapsed``:
    ``{row label: {task: [seeds whose final model collapsed]}}``."""
    tasks = [t for t in TASKS if t in args.tasks]
    header = "| model | " + " | ".join(METRICS[t][0] for t in tasks) + " |"
    lines = [header, "|---|" + "---|" * len(tasks)]
    collapsed = collapsed or {}
    for label, per_task in rows:
        cells = []
        for t in tasks:
            scores = per_task.get(t)
            gone = len(collapsed.get(label, {}).get(t, []))
            cells.append(" / ".join(cell(v) for v in scores) + f" {runs_note(len(scores[0]), gone)}" if scores else "–")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for label, figures in PUBLISHED:
        lines.append(f"| *{label}*, published | " + " | ".join(figures.get(t, "–") for t in tasks) + " |")
    text = ["Generated by `" + " ".join(["python -m experiments.task_table"] + args.argv) + "` from the runs' "
            "`results.json` files; final evaluation of the best checkpoint. Rows name each model's directory, "
            "whose README.md (the model card `pytorch_convert.py` writes) says how it was pretrained. Each cell: "
            "the median over the seeds "
            f"({', '.join(str(SEED_BASE + k) for k in range(args.seeds))}) with its spread in brackets (min–max "
            "up to 5 seeds, interquartile range past 5), then mean ± sample standard deviation; n = finished "
            "runs. Published rows: the seeds' figures (and KLUE's README baselines for the KLUE columns) with "
            "their full training sets and budgets, for context only.", "", *lines, "",
            "Notes, per task (splits, caps, and every difference from the published protocol):", ""]
    for t in tasks:
        text.append(f"- **{METRICS[t][0]}**: " + "; ".join(notes.get(t, [])) + ".")
    left_out = [t for t in TASKS if t not in tasks]
    if left_out:
        text.append("- Not run for this table (left out of `--tasks`): "
                    + ", ".join(METRICS[t][0].split(" (")[0] for t in left_out) + ".")
    if any(collapsed.values()):
        text.append("- *collapsed*: runs whose final model predicted one class for at least 95 % of the examples, "
                    "gave regression scores with under 5 % of the gold scores' spread, or tagged (nearly) only O "
                    "(finetune/collapse.py; each run's results.json says which under `collapsed`). Their scores "
                    "are in the cell, but measure no learning.")
    naver = ", ".join(f"{label} {figures['naver-ner']}" for label, figures in PUBLISHED if "naver-ner" in figures)
    text.append(f"- **Naver NER** (the seeds' NER column; published entity F1: {naver}): no column, "
                f"{NOT_AT_HAND['naver-ner']}.")
    return "\n".join(text) + "\n"


def lay_out_clean(task, data_dir, args, corpus):
    """The task's capped files (experiments/task_data.py), with every evaluation example that holds
    text of the pretraining corpus dropped (experiments/decontaminate.py); returns its TaskData.

    Laid out in a staging directory first and moved in file by file only where the bytes differ,
    so a run of another process reading ``data_dir`` never sees a file before its filtering."""
    staging = f"{data_dir}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        data = lay_out(task, staging, args.train_limit, args.eval_limit, args.split_seed)
        if corpus is not None:
            dropped = []
            for path in task_files(task, staging, data.files):
                kept, gone = filter_file(path, corpus, header=task not in HEADERLESS)
                if gone:
                    dropped.append(f"{gone:,} of {kept + gone:,} examples of `{os.path.basename(path)}`")
            data.notes.append(("dropped from evaluation, as holding a sentence of the models' pretraining corpus "
                               f"(≥{MIN_CHARS} characters, verbatim): " + ", ".join(dropped)) if dropped else
                              "no evaluation example holds a sentence of the models' pretraining corpus "
                              f"(≥{MIN_CHARS} characters, verbatim)")
        os.makedirs(data_dir, exist_ok=True)
        for name in sorted(os.listdir(staging)):
            source, target = os.path.join(staging, name), os.path.join(data_dir, name)
            if not (os.path.isfile(target) and filecmp.cmp(source, target, shallow=False)):
                os.replace(source, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return data


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_dir", required=True, help="a converted discriminator (transformers directory)")
    p.add_argument("--seeds", type=int, default=DEFAULT_SEEDS,
                   help=f"seeds per task and model (default {DEFAULT_SEEDS}: the cells report medians)")
    p.add_argument("--train_limit", type=int, default=None, help="training examples per task (QA: questions)")
    p.add_argument("--eval_limit", type=int, default=None, help="dev/test examples per split and task")
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of {','.join(TASKS)}")
    p.add_argument("--work", default="data/task_table")
    p.add_argument("--random_init", action=argparse.BooleanOptionalAction, default=True,
                   help="also fine-tune the same architecture from random initialisation (default on)")
    p.add_argument("--also", dest="extra_models", action="append", default=[], metavar="LABEL=DIR",
                   help="another converted discriminator of the same max_position_embeddings as a row of its "
                        "own (e.g. a continued-pretraining model beside the one it started from); repeatable")
    p.add_argument("--only", help="fine-tune this row alone (pretrained, random_init or an --also LABEL), e.g. "
                                  "rows in separate processes at once; a last run without --only then finds "
                                  "every run finished and writes the table with all of them")
    p.add_argument("--table_only", action="store_true",
                   help="start no run: tabulate the finished ones (a cell's n says how many seeds it holds)")
    p.add_argument("--pretraining_corpus", action="append", default=[], metavar="PATH",
                   help="a text file, or a directory of them, the models were pretrained on (repeatable): "
                        "evaluation examples holding one of its sentences are dropped, and the notes say how many")
    p.add_argument("--split_seed", type=int, default=0, help="seed of the caps and of the stand-in splits")
    p.add_argument("--num_train_epochs", type=float, default=None, help="override the YAMLs' epochs")
    p.add_argument("--max_steps", type=int, default=None, help="override: optimizer steps per run")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any YAML key for every task, as run_finetune.py's --set (e.g. learning_rate: "
                        "a capped, shortened run under-trains at the published 5e-5); the notes list each one")
    p.add_argument("--max_seq_len", type=int, default=None,
                   help="override (default: the YAML's, cut to the model's max_position_embeddings)")
    p.add_argument("--logging_steps", type=int, default=None, help="override: evaluate every N steps")
    p.add_argument("--num_threads", type=int, default=1, help="torch threads per run (default 1)")
    p.add_argument("--results_md", default=None, help="also put the table into this markdown file's section")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.tasks = [t for t in args.tasks.split(",") if t]
    for t in args.tasks:
        if t in NOT_AT_HAND:
            p.error(f"{t}: {NOT_AT_HAND[t]}")
    extras = []
    for item in args.extra_models:
        label, sep, model_dir = item.partition("=")
        if not sep or not label or not model_dir:
            p.error(f"--also {item!r}: expected LABEL=DIR")
        if label in ("pretrained", "random_init") or label in dict(extras):
            p.error(f"--also {item!r}: the label {label!r} is taken")
        extras.append((label, model_dir))
    args.extra_models = extras
    labels = ["pretrained", "random_init"] + [label for label, _ in extras]
    if args.only is not None and args.only not in labels:
        p.error(f"--only {args.only}: not a row of this table (rows: {', '.join(labels)})")
    unknown = [t for t in args.tasks if t not in TASKS]
    if unknown:
        p.error(f"unknown task(s) {', '.join(unknown)}; known: {', '.join(TASKS)}")
    return args


def main(argv=None):
    os.environ.setdefault("USE_TF", "0")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parse_args(argv)
    from transformers import AutoConfig

    from finetune.config import parse_overrides
    from util.errors import UserInputError

    positions = None
    for model_dir in [args.model_dir] + [d for _, d in args.extra_models]:
        if not os.path.isfile(os.path.join(model_dir, "config.json")):
            raise UserInputError(f"{model_dir}: no config.json (expected a transformers model directory)")
        own = AutoConfig.from_pretrained(model_dir, local_files_only=True).max_position_embeddings
        if positions is not None and own != positions:
            # One max_seq_len per task keeps a column's rows on the same inputs.
            raise UserInputError(f"{model_dir}: max_position_embeddings {own}, but --model_dir has {positions}; "
                                 f"every row of one table must take the same sequence length")
        positions = positions or own
    models = [("pretrained", args.model_dir)]
    if args.random_init:
        models.append(("random_init", random_init_copy(args.model_dir, os.path.join(args.work, "random_init"))))
    models += list(args.extra_models)
    if args.only:
        models = [(label, model_dir) for label, model_dir in models if label == args.only]
    base = {k: v for k, v in (("num_train_epochs", args.num_train_epochs), ("max_steps", args.max_steps),
                              ("logging_steps", args.logging_steps), ("num_threads", args.num_threads))
            if v is not None}
    base.update(parse_overrides(args.overrides))
    per_model = {label: {} for label, _ in models}
    collapsed = {label: {} for label, _ in models}
    notes = {}
    corpus = corpus_sentences(args.pretraining_corpus) if args.pretraining_corpus else None
    for task in args.tasks:
        data_dir = os.path.join(args.work, "data", task)
        data = lay_out_clean(task, data_dir, args, corpus)
        overrides = dict(base)
        from finetune.config import read_yaml

        yaml_len = int(read_yaml(os.path.join(ROOT, "conf", task, "electra-small.yaml"))[0]["max_seq_len"])
        overrides["max_seq_len"] = min(args.max_seq_len or yaml_len, positions)
        if task == "korquad" and overrides["max_seq_len"] < yaml_len:
            # The YAML's 64-token questions and 128-token stride assume 512-token windows; in a
            # short one they leave no room for context (a one-line error) and no overlap.
            overrides.setdefault("max_query_length", overrides["max_seq_len"] // 2)
            overrides.setdefault("doc_stride", overrides["max_seq_len"] // 4)
        config_values = None
        for label, model_dir in models:
            scores = None
            for k in range(args.seeds):
                run_dir = os.path.join(args.work, "runs", label, task, f"seed{SEED_BASE + k}")
                results, config_values = run_one(task, model_dir, data_dir, data, run_dir, SEED_BASE + k, overrides,
                                                 new_runs=not args.table_only)
                if results is None:
                    continue
                metrics = final_metrics(results, data.report_split)
                if (results.get("collapsed") or {}).get(data.report_split):
                    collapsed[label].setdefault(task, []).append(SEED_BASE + k)
                keys = METRICS[task][1]
                scores = scores or [[] for _ in keys]
                for bucket, key in zip(scores, keys):
                    bucket.append(float(metrics[key]))
            per_model[label][task] = scores
        changed = published_overrides(config_values, task)
        task_notes = list(data.notes) + [f"reported on {data.report_split}"]
        if changed:
            task_notes.append("changed from the published YAML: " + ", ".join(
                f"{k} {old} → {new}" for k, (old, new) in sorted(changed.items())))
        if args.max_seq_len is None and yaml_len > positions:
            task_notes.append(f"max_seq_len cut to the model's {positions} positions")
        notes[task] = task_notes
    labels = {"pretrained": f"`{shown_path(args.model_dir)}` (this model)",
              "random_init": "same architecture, random initialisation",
              **{label: f"{label} (`{shown_path(d)}`)" for label, d in args.extra_models}}
    body = build_table([(labels[label], per_model[label]) for label, _ in models], notes, args,
                       {labels[label]: collapsed[label] for label, _ in models})
    table_path = os.path.join(args.work, "task_table.md")
    with atomic_write(table_path) as f:
        f.write(body)
    write_json(os.path.join(args.work, "task_table.json"),
               {"scores": per_model, "collapsed": {k: v for k, v in collapsed.items() if v}, "notes": notes,
                "argv": args.argv})
    if args.results_md:
        put_section(args.results_md, body)
    print(body)
    print(f"wrote {table_path}" + (f" and the task_table section of {args.results_md}" if args.results_md else ""))


if __name__ == "__main__":
    from util.errors import run_cli

    run_cli(main)
