"""Write docs/results.md's continued-pretraining section from the runs' own files; nothing by hand.

    .venv/bin/python -m experiments.continued_results --work data/continued

Reads what experiments/continued_pretraining.py leaves under --work (corpus_sources.json, the
datasets' stats.json, vocab/extended/vocab_extension.json, heldout_eval/<model>/results, every
finished fine-tuning run) and replaces the block between ``<!-- continued_pretraining -->``
markers in docs/results.md, leaving the rest of the file as it is.
"""
import argparse
import json
import os
import statistics

from experiments.decontaminate import MIN_CHARS
from experiments.make_results import read_unsup
from experiments.task_table import cell, finished, replace_section
from util.errors import UserInputError, run_cli
from util.files import atomic_write

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKER = "continued_pretraining"
MODELS = [("general", "general (written text, from scratch)"),
          ("written", "+ written text (control)"),
          ("dialogue", "+ dialogue text"),
          ("dialogue_extended", "+ dialogue text, vocab extended")]
TASK = "intent_3i4k"


def benchmark_note(sources):
    """The corpus line on benchmark text removed (absent from corpora staged before that)."""
    dropped = sources.get("dropped_benchmark_text")
    if dropped is None:
        return ""
    return (f"; then every line holding a sentence of a benchmark's evaluation split ({MIN_CHARS} characters or more, "
            f"verbatim; experiments/decontaminate.py): {json.dumps(dropped, sort_keys=True)}")


def load(path):
    if not os.path.isfile(path):
        raise UserInputError(f"{path}: not found (written by experiments/continued_pretraining.py)")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def finetune_scores(work, name):
    """[(accuracy, macro F1) of each finished seed] at the end of training: with no dev split, the
    selected checkpoint would be chosen on the test set, so no selection is reported."""
    scores, root = [], os.path.join(work, "finetune", name)
    for seed_dir in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        results = finished(os.path.join(root, seed_dir, TASK, "results.json"))
        if results:
            during = [e for e in results["evaluations"] if e["split"] == "test" and not e.get("final")]
            metrics = during[-1]["metrics"]
            scores.append((metrics["accuracy"], metrics.get("macro_f1")))
    return scores


def resumptions(work):
    """The runs that were stopped and resumed, as their logs say (run_pretraining's resume line)."""
    found = []
    for name, _ in MODELS:
        log = os.path.join(work, "logs", f"pretrain_{name}.log")
        if os.path.isfile(log):
            with open(log, encoding="utf-8", errors="replace") as f:
                found += [f"{name}: {line.strip()}" for line in f if line.startswith("resuming from")]
    return found


def compare(label, a, b):
    """One sentence: the mean difference of a and b and whether it exceeds the seeds' spread."""
    if len(a) < 2 or len(b) < 2:
        return f"{label}: too few seeds to compare."
    from scipy.stats import ttest_ind

    diff = statistics.mean(a) - statistics.mean(b)
    noise = statistics.stdev(a) + statistics.stdev(b)
    verdict = "larger than" if abs(diff) > noise else "within"
    p = ttest_ind(a, b, equal_var=False).pvalue
    return (f"{label}: {diff:+.2f} points, {verdict} the seeds' spread (sum of the two stds {noise:.2f}; "
            f"Welch's t-test p = {p:.2f}).")


def table(header, rows):
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def build(work):
    sources = load(os.path.join(work, "corpus_sources.json"))
    args = load(os.path.join(work, "experiment_args.json"))
    settings = {k: v for k, v in args.items() if k not in ("machine", "commit_at_end")}
    extension = load(os.path.join(work, "vocab", "extended", "vocab_extension.json"))
    datasets = {label: load(os.path.join(work, "tfrecords", label, "stats.json"))
                for label in ("written", "dialogue", "dialogue_extended", "heldout", "heldout_extended")}
    general_hp = load(os.path.join(work, "hparams_general.json"))
    continue_hp = load(os.path.join(work, "hparams_dialogue.json"))
    # Tokens per sentence (line) of the held-out text under each vocab, as the dataset builder counted them.
    tps = {vocab: datasets[label]["tokens"] / datasets[label]["sentences"]
           for vocab, label in (("general", "heldout"), ("extended", "heldout_extended"))}
    corpus_rows = [(label, f"{d['sentences']:,}", f"{d['tokens']:,}", f"{d['examples']:,}",
                    f"{100 * d['unk_rate']:.3f} %") for label, d in datasets.items()]

    heldout_rows, scores = [], {}
    for name, label in MODELS:
        res = read_unsup(os.path.join(work, "heldout_eval", name, "results", "unsup_results.txt"))
        vocab = "extended" if name == "dialogue_extended" else "general"
        heldout_rows.append((label, f"{res['masked_lm_loss']:.3f}", f"{res['masked_lm_accuracy']:.3f}",
                             f"{res['disc_auc_real_tokens']:.3f}", f"{tps[vocab]:.2f}"))
        scores[name] = finetune_scores(work, name)
    ft_rows = []
    for name, label in MODELS:
        acc = [a for a, _ in scores[name]]
        f1 = [f for _, f in scores[name] if f is not None]
        ft_rows.append((label, f"{cell(acc)} (n={len(acc)})" if acc else "–", cell(f1) if f1 else "–"))
    acc = {name: [a for a, _ in scores[name]] for name, _ in MODELS}
    readings = [compare("dialogue − control (the domain, beyond more steps)", acc["dialogue"], acc["written"]),
                compare("control − general (more steps on written text)", acc["written"], acc["general"]),
                compare("dialogue with extended vocab − dialogue", acc["dialogue_extended"], acc["dialogue"])]
    tpsx = extension.get("tokens_per_sentence", {})
    resumed = resumptions(work)
    return f"""<!-- {MARKER} -->
## Continued pretraining: written → dialogue, with a control

Generated by `python -m experiments.continued_results --work {args.get('work', work)}` from the runs of
`python -m experiments.continued_pretraining` ({json.dumps(settings, sort_keys=True)}), on
{args.get('machine', 'an unrecorded machine')}; the code at commit {args.get('commit_at_end', 'unrecorded')}
when the run ended.

What ran: a general model pretrained from scratch on written text only ({general_hp['num_train_steps']:,} steps of \
{general_hp['train_batch_size']}, lr {general_hp['learning_rate']}, warmup {general_hp['num_warmup_steps']}, \
{general_hp['num_hidden_layers']} layers at width {general_hp['hidden_size']}, generator temperature \
{general_hp['temperature']}; a WordPiece vocab of {args['vocab_size']:,} built from the written text with 500 \
unused slots), then three continuations of it, each {continue_hp['num_train_steps']:,} steps (lr \
{continue_hp['learning_rate']}, warmup {continue_hp['num_warmup_steps']}, fresh optimizer state, warm start \
through `saved_model`): on dialogue text; on the written text again (the control: as many extra steps, in the \
domain it already saw); and on dialogue text with {extension.get('num_new', len(extension['new_tokens']))} \
dialogue pieces written into the vocab's unused slots by `build_vocab.py --extend` (their embeddings start as \
the mean of the pieces they used to split into).

Interrupted and resumed: {"; ".join(resumed) if resumed else "none"}. (When a resume lowered
`num_train_steps`, the steps before it followed the longer schedule: the warmup is scaled by the
decay toward `num_train_steps` (model/optimization.py, as upstream), so they ran at a slightly
higher rate than the shorter run's schedule gives.)

Corpora (examples of {general_hp['max_seq_length']} tokens, packed):

{table(['dataset', 'lines', 'tokens', 'examples', 'UNK'], corpus_rows)}

Dialogue text: 3i4k train/val utterances ({sources['3i4k_train_val_kept']:,}; {sources['3i4k_train_val_dropped']:,}
dropped because the same text is a 3i4k test utterance or an NSMC test review), unlabeled BEEP! comments
({sources['comments_kept']:,}), NSMC's crawled reviews ({sources['reviews_kept']:,}; NSMC's test reviews dropped
by id and text). Lines that are word for word a 3i4k test utterance or an NSMC test review were dropped from
every source, written text included: {json.dumps(sources['dropped_as_test_text'], sort_keys=True)}{benchmark_note(sources)}. Held out,
never trained on: 3i4k's test utterances ({sources['3i4k_test_held_out']:,}), 1 in {sources['held_out_every']}
comments ({sources['comments_held_out']:,}) and reviews ({sources['reviews_held_out']:,}). Chatbot Q/A is left
out whole (the all-task table tests on a split of it). The extension's own count on the dialogue corpus:
{tpsx.get('before', '?')} → {tpsx.get('after', '?')} tokens per sentence.

### On held-out dialogue text

{table(['model', 'generator MLM loss', 'generator MLM accuracy', 'discriminator AUC (real tokens)',
        'tokens per sentence'], heldout_rows)}

Each model's last checkpoint, up to 50 batches of 64 held-out examples (`run_pretraining.py` with `do_train`
false). The extended model's examples are tokenized with its own vocab: fewer, longer pieces per sentence,
so its MLM figures are over a different set of targets and compare only roughly with the others'.

### Fine-tuned on 3i4k intent (7 classes)

{table(['model', 'accuracy', 'macro F1'], ft_rows)}

Each cell: median [min–max] · mean ± sample std over the seeds.

3i4k's official split: training on {args['train_limit']:,} utterances sampled with a fixed seed from
`fci_train_val.txt` (of 55,133), testing on all of `fci_test.txt` (6,120), {args['seeds']} seeds per model,
2 epochs, lr 3e-4 with 10 % warmup, max_seq_len 64 (conf/intent-3i4k/electra-small.yaml with `--set`); the
figures are the test evaluation at the end of training (3i4k has no dev split here, and choosing a
checkpoint on the test set would flatter every row).

What it shows (mean accuracy differences, computed):
- {readings[0]}
- {readings[1]}
- {readings[2]}
<!-- /{MARKER} -->
"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="data/continued")
    p.add_argument("--output", default=os.path.join(ROOT, "docs", "results.md"))
    args = p.parse_args(argv)
    section = build(args.work)
    old = open(args.output, encoding="utf-8").read() if os.path.isfile(args.output) else ""
    with atomic_write(args.output) as f:
        f.write(replace_section(old, section, MARKER))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    run_cli(main)
