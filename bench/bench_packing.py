"""Packed against unpacked pretraining examples on dialogue text: examples, steps and wall time for the same text.

    .venv/bin/python -m bench.bench_packing [--max_seq_length 64] [--batch_size 32] [--work DIR]

Corpus: the dialogue text of ../shared/data, one utterance a line and each line a document:
the unlabeled hate-speech comments (part 5) and the chatbot questions (ChatbotData.csv's Q
column), cleaned by preprocess.py (--one_doc_per_line). A 8,000-piece WordPiece vocab is built on
it. The dataset is built twice with build_pretraining_dataset.py, upstream's way (an example
never holds two documents) and with --pack; then each is pretrained for exactly one pass over
its examples (steps = examples / batch) with the torch backend on conf/pretrain/tiny.json,
one thread, and the wall time of the run is taken from its start to its end. The two runs
alternate (unpacked, packed, unpacked, packed, ...) so the machine's load falls on both alike.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
COMMENTS = os.path.join(SHARED, "korean-hate-speech", "unlabeled", "unlabeled_comments_5.txt")
CHATBOT = os.path.join(SHARED, "chatbot-data", "ChatbotData.csv")


def raw_corpus(directory):
    """comments.txt and questions.txt, an utterance a line, as the data sets give them."""
    os.makedirs(directory, exist_ok=True)
    with open(COMMENTS, encoding="utf-8") as f, open(os.path.join(directory, "comments.txt"), "w",
                                                     encoding="utf-8") as out:
        out.writelines(line for line in f if line.strip())
    with open(CHATBOT, encoding="utf-8", newline="") as f, open(os.path.join(directory, "questions.txt"), "w",
                                                                encoding="utf-8") as out:
        rows = csv.DictReader(f)
        out.writelines(row["Q"].strip() + "\n" for row in rows if row["Q"].strip())
    return directory


def text_tokens(data_dir, max_seq_length):
    """Positions holding text in every record: not [CLS], [SEP] or padding (ids 2, 3, 0 in our vocabs)."""
    import glob

    from pretrain import dataset_writer, tfrecords
    from util.tokenization import KoTokenizer

    tokenizer = KoTokenizer.from_vocab(data_dir)
    special = {tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id}
    count = 0
    for path in sorted(glob.glob(os.path.join(data_dir, "pretrain_data.tfrecord*"))):
        for offset, data in tfrecords.iter_records(path):
            ids = tfrecords.parse_int64_example(data, dataset_writer.FEATURE_NAMES, max_seq_length, path,
                                                offset)["input_ids"]
            count += sum(1 for i in ids.tolist() if i not in special)
    return count


def run(argv, **kwargs):
    env = dict(os.environ, OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    result = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, **kwargs)
    if result.returncode:
        raise SystemExit(f"{' '.join(argv[:2])} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result.stdout


def pretrain(data_dir, model_dir, steps, batch_size):
    hparams = {"num_train_steps": steps, "train_batch_size": batch_size, "num_warmup_steps": max(1, steps // 10),
               "save_checkpoints_steps": steps, "iterations_per_loop": max(1, steps // 10), "seed": 0}
    start = time.time()
    log = run(["run_pretraining.py", "--backend", "torch", "--data_dir", data_dir, "--model_name", model_dir,
               "--hparams", os.path.join(ROOT, "conf", "pretrain", "tiny.json"), "--hparams", json.dumps(hparams)])
    seconds = time.time() - start
    fills = [line.split(" tokens/s (")[1].split("%")[0] for line in log.splitlines()
             if line.startswith("train step") and " tokens/s (" in line]
    return seconds, fills[-1] if fills else None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max_seq_length", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="pretraining runs of each dataset, alternated")
    parser.add_argument("--work", help="scratch directory (default: a temporary one)")
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    work = args.work or tempfile.mkdtemp(prefix="bench_packing_")
    raw = raw_corpus(os.path.join(work, "raw"))
    cleaned = os.path.join(work, "corpus", "preprocessed.txt")
    run(["preprocess.py", "--corpus_dir", raw, "--output_file", cleaned, "--one_doc_per_line", "--quiet",
         "--num_processes", "2"])
    vocab = os.path.join(work, "vocab")
    run(["build_vocab.py", "--corpus", cleaned, "--vocab_size", "8000", "--min_frequency", "2",
         "--output_dir", vocab])
    datasets = {}
    for name, extra in (("unpacked", []), ("packed", ["--pack"])):
        out = os.path.join(work, name)
        start = time.time()
        run(["build_pretraining_dataset.py", "--corpus_dir", os.path.dirname(cleaned), "--vocab_file", vocab,
             "--output_dir", out, "--max_seq_length", str(args.max_seq_length), "--num_out_files", "4",
             "--no_progress", *extra])
        with open(os.path.join(out, "stats.json"), encoding="utf-8") as f:
            stats = json.load(f)
        for file_name in ("vocab.txt", "tokenizer_config.json"):
            with open(os.path.join(vocab, file_name), "rb") as src, open(os.path.join(out, file_name), "wb") as dst:
                dst.write(src.read())
        steps = -(-stats["examples"] // args.batch_size)
        datasets[name] = {"stats": stats, "build_seconds": time.time() - start, "steps": steps, "runs": [],
                          "text_tokens": text_tokens(out, args.max_seq_length)}
    for round_ in range(args.rounds):
        for name, entry in datasets.items():
            seconds, fill = pretrain(os.path.join(work, name), os.path.join(work, f"model_{name}_{round_}"),
                                     entry["steps"], args.batch_size)
            entry["runs"].append({"seconds": seconds, "logged_fill_percent": fill})
            print(f"{name} round {round_}: {entry['steps']} steps in {seconds:.0f} s", flush=True)

    first = datasets["unpacked"]["stats"]
    print(f"\ncorpus: {first['documents']:,} documents, {first['sentences']:,} sentences, {first['tokens']:,} "
          f"tokens; max_seq_length {args.max_seq_length}, batch {args.batch_size}, vocab 8,000 wordpiece\n")
    print("| dataset | examples | fill rate | text tokens in them | steps for one pass | wall time of the pass "
          "(s, each round) | s per step |")
    print("|---|---|---|---|---|---|---|")
    for name, entry in datasets.items():
        stats, runs = entry["stats"], entry["runs"]
        times = ", ".join(f"{r['seconds']:.0f}" for r in runs)
        per_step = min(r["seconds"] for r in runs) / entry["steps"]
        print(f"| {name} | {stats['examples']:,} | {stats['fill_rate']:.1%} | {entry['text_tokens']:,} | "
              f"{entry['steps']:,} | {times} | {per_step:.3f} |")
    with open(os.path.join(work, "bench_packing.json"), "w", encoding="utf-8") as f:
        json.dump({"args": vars(args), "datasets": datasets}, f, indent=2)
    print(f"\nresults: {os.path.join(work, 'bench_packing.json')}")


if __name__ == "__main__":
    main()
