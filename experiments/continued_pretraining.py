"""What continued (domain-adaptive) pretraining buys, with a control, on this CPU.

1. ``general``: pretrain from scratch on written text only (boddari, news sentences, konlpy's
   laws), with a WordPiece vocab built from that text (500 ``[unusedN]`` slots, as published).
2. Continue ``general`` for the same number of steps
   (a) ``dialogue``: on dialogue and colloquial text (3i4k utterances of its train/val split,
       unlabeled BEEP! comments, NSMC's crawled reviews minus NSMC's test set);
   (b) ``written``: on the written text again: the control, same steps, same schedule, the
       domain that ``general`` already saw, so (a) - (b) is what the domain buys beyond steps;
   (c) ``dialogue_extended``: as (a), with the vocab extended by ``--num_new`` dialogue pieces
       in the unused slots (``build_vocab.py --extend``); new rows start as the mean of the
       pieces they replace.
3. Held-out dialogue text (3i4k's official test utterances, 1 in 50 comments and reviews, never
   trained on): the generator's MLM loss and accuracy and the discriminator's real-token AUC of
   every model, and tokens per sentence under each vocab.
4. Fine-tune 3i4k intent classification (7 classes, official split; the training file capped and
   sampled with a fixed seed) with several seeds per model.

Kept out of every pretraining corpus: every 3i4k test utterance (also where the same text is in
the train/val file), NSMC's test reviews (by id and text), the held-out slices, and every line
holding a sentence of any benchmark's evaluation split (experiments/decontaminate.py). Chatbot Q/A is
left out whole, since the all-task table tests on a split of it.
experiments/continued_results.py writes docs/results.md's section from the runs' files.

    .venv/bin/python -m experiments.continued_pretraining --work data/continued
"""
import argparse
import json
import os
import random
import shutil
import sys

from experiments.decontaminate import benchmark_sentences, drop_benchmark_lines, drop_lines, holds_benchmark_text
from experiments.nsmc_experiment import PRETRAIN_HPARAMS, run, run_all, run_finetune_command
from experiments.stage_corpus import SHARED, normalized, nsmc_test_set, stage_reviews, stage_written
from util.files import atomic_write, write_json

THREE_I4K = os.path.join(SHARED, "pretrain-text", "3i4k", "data", "train_val_test")
HELD_OUT_EVERY = 50
# The NSMC experiment's architecture and sampling temperature (its pilots: temperature 2 keeps the
# discriminator learning on this kind of text). From scratch: its rate, 500 warmup steps;
# continued: half the rate, a tenth of the run as warmup, fresh optimizer slots.
GENERAL_HPARAMS = dict(PRETRAIN_HPARAMS, num_warmup_steps=500, save_checkpoints_steps=250)
CONTINUE_HPARAMS = dict(PRETRAIN_HPARAMS, learning_rate=1e-4, num_warmup_steps=50, save_checkpoints_steps=250)
INTENT_CONFIG = "conf/intent-3i4k/electra-small.yaml"  # the shipped 3i4k YAML, capped below
INTENT_SET = {"task": "intent_3i4k", "train_file": "train.tsv", "test_file": "fci_test.txt",
              "num_train_epochs": 2, "max_seq_len": 64,
              "learning_rate": 3e-4, "warmup_proportion": 0.1, "logging_steps": 160, "save_steps": 160,
              "no_cuda": True, "num_threads": 1}


def read_3i4k(name):
    with open(os.path.join(THREE_I4K, name), encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t", 1) for line in f if line.strip()]


def split_every(lines, every):
    """(kept, held out): every ``every``-th line is held out."""
    kept, held = [], []
    for i, line in enumerate(lines):
        (held if i % every == every - 1 else kept).append(line)
    return kept, held


def write_lines(path, lines, documents=False):
    """One line each; ``documents``: a blank line after each, so preprocess.py takes each line as
    a document (one utterance or review) instead of one file-long document to sentence-split."""
    with atomic_write(path) as f:
        for line in lines:
            f.write(line + ("\n\n" if documents else "\n"))


def stage_corpora(work, max_reviews):
    """raw/written, raw/dialogue and raw/heldout, and what was dropped, in corpus_sources.json."""
    record_path = os.path.join(work, "corpus_sources.json")
    if os.path.exists(record_path):
        return json.load(open(record_path))
    raw = os.path.join(work, "raw")
    shutil.rmtree(raw, ignore_errors=True)
    written, dialogue, heldout = (os.path.join(raw, n) for n in ("written", "dialogue", "heldout"))
    for d in (written, dialogue, heldout):
        os.makedirs(d)
    test_texts = {normalized(text) for _, text in read_3i4k("fci_test.txt")}
    # Whatever a benchmark tests on stays out: 3i4k's test utterances, and NSMC's test reviews
    # wherever they turn up word for word (a comment "!!!", a 3i4k fragment).
    forbidden = test_texts | nsmc_test_set(SHARED)[1]
    # And any line holding a sentence of a benchmark's evaluation split (KLUE-NLI's premises are
    # Wikinews sentences, which the written text holds too).
    benchmark = benchmark_sentences(SHARED)
    stage_written(SHARED, written)
    dropped = {"written": sum(drop_lines(written, lambda line: normalized(line) in forbidden).values())}
    benchmark_dropped = {"written": sum(drop_benchmark_lines(written, benchmark).values())}

    def clean(name, texts):
        kept = [t for t in texts if not holds_benchmark_text(t, benchmark)]
        benchmark_dropped[name] = len(texts) - len(kept)
        return kept

    train_utterances = [normalized(text) for _, text in read_3i4k("fci_train_val.txt")]
    kept_3i4k = [t for t in train_utterances if t and t not in test_texts]
    dropped["3i4k_train_val_as_nsmc_test"] = sum(t in forbidden for t in kept_3i4k)
    kept_3i4k = clean("3i4k", [t for t in kept_3i4k if t not in forbidden])
    write_lines(os.path.join(dialogue, "3i4k_train_val.txt"), kept_3i4k, documents=True)
    write_lines(os.path.join(heldout, "3i4k_test.txt"), sorted(test_texts), documents=True)

    with open(os.path.join(SHARED, "korean-hate-speech", "unlabeled", "unlabeled_comments_5.txt"),
              encoding="utf-8") as f:
        comments = [normalized(line) for line in f if line.strip()]
    dropped["comments"] = sum(c in forbidden for c in comments)
    comments = clean("comments", [c for c in comments if c not in forbidden])
    comments_kept, comments_held = split_every(comments, HELD_OUT_EVERY)
    write_lines(os.path.join(dialogue, "comments.txt"), comments_kept, documents=True)
    write_lines(os.path.join(heldout, "comments.txt"), comments_held, documents=True)

    scratch = os.path.join(work, "reviews_scratch")
    os.makedirs(scratch, exist_ok=True)
    review_stats = stage_reviews(SHARED, scratch, max_reviews)
    with open(os.path.join(scratch, "nsmc_reviews.txt"), encoding="utf-8") as f:
        reviews = [line.rstrip("\n") for line in f if line.strip()]
    shutil.rmtree(scratch)
    dropped["reviews"] = sum(r in forbidden for r in reviews)
    reviews = clean("reviews", [r for r in reviews if r not in forbidden])
    reviews_kept, reviews_held = split_every(reviews, HELD_OUT_EVERY)
    write_lines(os.path.join(dialogue, "reviews.txt"), reviews_kept, documents=True)
    write_lines(os.path.join(heldout, "reviews.txt"), reviews_held, documents=True)

    record = {"3i4k_train_val_kept": len(kept_3i4k),
              "3i4k_train_val_dropped": len(train_utterances) - len(kept_3i4k),
              "3i4k_test_held_out": len(test_texts), "comments_kept": len(comments_kept),
              "comments_held_out": len(comments_held), "reviews_kept": len(reviews_kept),
              "reviews_held_out": len(reviews_held), "nsmc_test_dropped": review_stats,
              "dropped_as_test_text": dropped,
              "dropped_benchmark_text": benchmark_dropped,
              "held_out_every": HELD_OUT_EVERY, "chatbot": "left out whole (the task table tests on it)"}
    write_json(record_path, record)
    return record


def prepare_text(work, name, py, num_processes):
    """preprocess.py over raw/<name>: one line a sentence."""
    out = os.path.join(work, "corpus", name, "corpus.txt")
    if not os.path.exists(out):
        run(f"preprocess_{name}", [py, "preprocess.py", "--corpus_dir", os.path.join(work, "raw", name),
                                   "--output_file", out, "--num_processes", str(num_processes), "--quiet"], work)
    return out


def build_dataset(work, corpus_name, vocab_dir, label, py, num_processes):
    out = os.path.join(work, "tfrecords", label)
    if not os.path.exists(os.path.join(out, "stats.json")):
        # Utterances and reviews are a line each: packed, or 80 % of every example is padding.
        run(f"dataset_{label}", [py, "build_pretraining_dataset.py",
                                 "--corpus_dir", os.path.join(work, "corpus", corpus_name),
                                 "--vocab_file", vocab_dir, "--output_dir", out,
                                 "--max_seq_length", str(PRETRAIN_HPARAMS["max_seq_length"]),
                                 "--no-blanks-separate-docs", "--num_processes", str(num_processes),
                                 "--no_progress"], work)
    return out


def pretrain(work, name, data_dir, vocab_dir, hparams, steps, py, saved_model=None):
    model_dir = os.path.join(work, "models", name)
    if os.path.exists(os.path.join(model_dir, "results", "unsup_results.txt")):
        return model_dir
    values = dict(hparams, vocab_file=vocab_dir, num_train_steps=steps)
    if saved_model:
        values["saved_model"] = saved_model
    hparams_path = os.path.join(work, f"hparams_{name}.json")
    write_json(hparams_path, values)
    run(f"pretrain_{name}", [py, "run_pretraining.py", "--data_dir", data_dir, "--model_name", model_dir,
                             "--hparams", hparams_path], work)
    return model_dir


def held_out_eval(work, name, model_dir, heldout_data, vocab_dir, py):
    """The model's last checkpoint evaluated on held-out dialogue text, in its own directory."""
    eval_dir = os.path.join(work, "heldout_eval", name)
    results = os.path.join(eval_dir, "results", "unsup_results.txt")
    if os.path.exists(results):
        return results
    shutil.rmtree(eval_dir, ignore_errors=True)
    os.makedirs(eval_dir)
    with open(os.path.join(model_dir, "checkpoint"), encoding="utf-8") as f:
        prefix = f.readline().split('"')[1]
    for entry in os.listdir(model_dir):
        if entry.startswith(os.path.basename(prefix) + "."):
            shutil.copy(os.path.join(model_dir, entry), eval_dir)
    with atomic_write(os.path.join(eval_dir, "checkpoint")) as f:
        f.write(f'model_checkpoint_path: "{os.path.basename(prefix)}"\n')
    trained = json.load(open(os.path.join(model_dir, "pretrain_config.json")))
    values = dict(PRETRAIN_HPARAMS, vocab_file=vocab_dir, do_train=False, do_eval=True, num_eval_steps=50,
                  num_train_steps=trained["num_train_steps"])
    run(f"heldout_eval_{name}", [py, "run_pretraining.py", "--data_dir", heldout_data, "--model_name", eval_dir,
                                 "--hparams", json.dumps(values)], work)
    return results


def intent_data(work, train_limit):
    """3i4k's official test file whole; its train/val file sampled to ``train_limit`` with a fixed seed."""
    out = os.path.join(work, "finetune_data", "3i4k")
    os.makedirs(out, exist_ok=True)
    rows = read_3i4k("fci_train_val.txt")
    random.Random(13).shuffle(rows)  # the file is sorted by label: its head is one class
    write_lines(os.path.join(out, "train.tsv"), ["\t".join(r) for r in rows[:train_limit]])
    shutil.copy(os.path.join(THREE_I4K, "fci_test.txt"), os.path.join(out, "fci_test.txt"))
    return out


def finetune_command(model, data_dir, out, seed):
    # --set paths are relative to the current directory, not to data_dir as the YAML's are.
    settings = dict(INTENT_SET, data_dir=data_dir, ckpt_dir=out, model_name_or_path=model, seed=seed,
                    train_file=os.path.join(data_dir, INTENT_SET["train_file"]),
                    test_file=os.path.join(data_dir, INTENT_SET["test_file"]))
    return run_finetune_command(INTENT_CONFIG, settings)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="data/continued")
    p.add_argument("--general_steps", type=int, default=1200)
    p.add_argument("--continue_steps", type=int, default=500)
    p.add_argument("--vocab_size", type=int, default=16000)
    p.add_argument("--num_new", type=int, default=300, help="dialogue pieces added to the vocab in (c)")
    p.add_argument("--max_reviews", type=int, default=60000)
    p.add_argument("--train_limit", type=int, default=5000, help="3i4k training utterances (sampled)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--num_processes", type=int, default=2)
    p.add_argument("--stop_after", choices=["general", "continue", "convert"])
    args = p.parse_args()
    work, py = os.path.abspath(args.work), sys.executable
    os.makedirs(work, exist_ok=True)
    print(json.dumps(stage_corpora(work, args.max_reviews)), flush=True)
    import concurrent.futures

    corpora = {"written": prepare_text(work, "written", py, args.num_processes)}
    vocab = os.path.join(work, "vocab", "general")
    if not os.path.exists(os.path.join(vocab, "vocab.txt")):
        run("build_vocab", [py, "build_vocab.py", "--corpus", corpora["written"], "--tokenizer", "wordpiece",
                            "--vocab_size", str(args.vocab_size), "--unused_size", "500", "--output_dir", vocab,
                            "--num_processes", str(args.num_processes)], work)
    data = {"written": build_dataset(work, "written", vocab, "written", py, args.num_processes)}
    # The general model trains while the dialogue text is cleaned and tokenized beside it.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        general_run = pool.submit(pretrain, work, "general", data["written"], vocab, GENERAL_HPARAMS,
                                  args.general_steps, py)
        for name in ("dialogue", "heldout"):
            corpora[name] = prepare_text(work, name, py, 1)
            data[name] = build_dataset(work, name, vocab, name, py, 1)
        general = general_run.result()
    if args.stop_after == "general":
        return

    extended = os.path.join(work, "vocab", "extended")
    if not os.path.exists(os.path.join(extended, "vocab.txt")):
        run("extend_vocab", [py, "build_vocab.py", "--extend", vocab, "--corpus", corpora["dialogue"],
                             "--num_new", str(args.num_new), "--output_dir", extended], work)
    data["dialogue_extended"] = build_dataset(work, "dialogue", extended, "dialogue_extended", py, args.num_processes)
    data["heldout_extended"] = build_dataset(work, "heldout", extended, "heldout_extended", py, args.num_processes)
    runs = {"general": (general, vocab, "heldout")}
    continuations = (("written", vocab), ("dialogue", vocab), ("dialogue_extended", extended))
    with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
        futures = {name: pool.submit(pretrain, work, name, data[name], run_vocab, CONTINUE_HPARAMS,
                                     args.continue_steps, py, general) for name, run_vocab in continuations}
        for name, run_vocab in continuations:
            runs[name] = (futures[name].result(), run_vocab, "heldout_extended" if run_vocab == extended else "heldout")
    for name, (model_dir, run_vocab, heldout) in runs.items():
        held_out_eval(work, name, model_dir, data[heldout], run_vocab, py)
    if args.stop_after == "continue":
        return

    pt = {}
    for name, (model_dir, _, _) in runs.items():
        pt[name] = os.path.join(work, "pytorch", name)
        if not os.path.exists(os.path.join(pt[name], "config.json")):
            run(f"convert_{name}", [py, "pytorch_convert.py", "--tf_ckpt_path", model_dir,
                                    "--pt_discriminator_path", pt[name]], work)
    if args.stop_after == "convert":
        return
    from experiments.task_table import finished

    data_dir = intent_data(work, args.train_limit)
    jobs = []
    for seed in range(1, args.seeds + 1):
        for name, model in pt.items():
            out = os.path.join(work, "finetune", name, f"seed{seed}")
            if not finished(os.path.join(out, INTENT_SET["task"], "results.json")):
                jobs.append((f"finetune_{name}_seed{seed}", finetune_command(model, data_dir, out, seed)))
    run_all(jobs, work, args.parallel)
    from bench.report import git_revision, machine_description

    write_json(os.path.join(work, "experiment_args.json"),
               dict(vars(args), machine=machine_description(), commit_at_end=git_revision()))
    print(f"done; now: {py} -m experiments.continued_results --work {args.work}")


if __name__ == "__main__":
    main()
