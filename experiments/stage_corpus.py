"""Lay out the real pretraining corpus of the NSMC experiment as a directory of raw files.

Sources (all under ../shared/data; licenses in each folder's MANIFEST.md):
- NSMC's 712,404 crawled reviews, minus every review that is in NSMC's test set — by
  review id (NSMC's ``id`` is the crawl's ``review_id``) and by text, so no test sentence
  is seen in pretraining; one review a document;
- Korean chatbot Q/A pairs and 3i4k utterances, minus every utterance the intent tasks test
  on (3i4k's ``fci_test.txt`` and the chatbot test split, experiments/intent_splits.py),
  counted in corpus_sources.json;
- boddari (wikinews, book reviews, fairy tales, UNESCO report), Korean news sentences from
  the parallel corpora, BEEP! unlabeled comments, konlpy's constitution and bills.

Last, every line of every source that holds a sentence of a benchmark's evaluation split
(experiments/decontaminate.py: e.g. KLUE-NLI's premises, which are Wikinews sentences) is
dropped, counted per file in corpus_sources.json.

The directory is then cleaned by preprocess.py like any user's corpus.

    .venv/bin/python -m experiments.stage_corpus --output_dir data/experiment/raw
"""
import argparse
import json
import os
import shutil
import tarfile

from experiments.decontaminate import benchmark_sentences, drop_benchmark_lines
from experiments.intent_splits import chatbot_rows, csv_text, heldout_texts, normalized  # noqa: F401 (normalized: re-exported)
from util.files import atomic_write, write_json

SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data")

SOURCES = {
    "nsmc_reviews": ("nsmc/raw_reviews.tar.gz", "CC0"),
    "chatbot": ("chatbot-data/ChatbotData.csv", "MIT"),
    "3i4k": ("pretrain-text/3i4k/data/fci.txt", "CC BY-SA 4.0"),
    "boddari": ("pretrain-text/boddari/boddari/txt", "CC BY 2.5 / CC BY / CC BY-SA 3.0 IGO"),
    "parallel_news": ("pretrain-text/korean-parallel-corpora", "CC BY-SA 3.0"),
    "hate_speech_unlabeled": ("korean-hate-speech/unlabeled/unlabeled_comments_5.txt", "CC BY-SA 4.0"),
    "konlpy": ("pretrain-text/konlpy-corpus/konlpy/data/corpus", "public works"),
}


def nsmc_test_set(shared):
    ids, texts = set(), set()
    with open(os.path.join(shared, "nsmc", "ratings_test.txt"), encoding="utf-8") as f:
        next(f)
        for line in f:
            review_id, document, _ = line.rstrip("\n").split("\t")
            ids.add(review_id)
            texts.add(normalized(document))
    return ids, texts


def stage_reviews(shared, out_dir, max_reviews=None):
    """Write the crawled reviews not in NSMC's test set, one review a document."""
    test_ids, test_texts = nsmc_test_set(shared)
    kept = dropped_by_id = dropped_by_text = 0
    path = os.path.join(out_dir, "nsmc_reviews.txt")
    with tarfile.open(os.path.join(shared, "nsmc", "raw_reviews.tar.gz")) as archive, atomic_write(path) as out:
        members = sorted((m for m in archive.getmembers() if m.name.endswith(".json")), key=lambda m: m.name)
        for member in members:
            for review in json.load(archive.extractfile(member)):
                text = normalized(review.get("review", ""))
                if not text:
                    continue
                if review.get("review_id") in test_ids:
                    dropped_by_id += 1
                    continue
                if text in test_texts:
                    dropped_by_text += 1
                    continue
                out.write(text + "\n\n")
                kept += 1
                if max_reviews and kept >= max_reviews:
                    break
            if max_reviews and kept >= max_reviews:
                break
    return {"reviews_kept": kept, "dropped_test_id": dropped_by_id, "dropped_test_text": dropped_by_text}


def stage_written(shared, out_dir):
    """Written text: boddari (wikinews, book reviews, fairy tales, UNESCO report), news sentences
    from the parallel corpora, konlpy's constitution and bills."""
    boddari = os.path.join(shared, SOURCES["boddari"][0])
    for name in sorted(os.listdir(boddari)):
        shutil.copy(os.path.join(boddari, name), os.path.join(out_dir, f"boddari_{name}"))
    parallel = os.path.join(shared, SOURCES["parallel_news"][0])
    for root, _, files in os.walk(parallel):
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.endswith((".ko", ".nk")):
                shutil.copy(path, os.path.join(out_dir, f"news_{name}.txt"))
            elif name.endswith(".tar.gz"):
                with tarfile.open(path) as archive:
                    for member in archive.getmembers():
                        if member.name.endswith(".ko"):
                            with archive.extractfile(member) as src, \
                                    open(os.path.join(out_dir, f"news_{os.path.basename(member.name)}.txt"), "wb") as dst:
                                shutil.copyfileobj(src, dst)
    konlpy = os.path.join(shared, SOURCES["konlpy"][0])
    for root, _, files in os.walk(konlpy):
        for name in sorted(files):
            if name.endswith(".txt"):
                shutil.copy(os.path.join(root, name), os.path.join(out_dir, f"konlpy_{os.path.basename(root)}_{name}"))


def stage_intent_text(shared, out_dir):
    """The chatbot Q/A pairs and 3i4k utterances, minus what the intent tasks test on
    (experiments/intent_splits.py): a chatbot row whose question, or a 3i4k line whose
    utterance, is a test utterance of either task is dropped. Returns the counts."""
    heldout = heldout_texts(shared)
    header, rows = chatbot_rows(shared)
    kept = [row for row in rows if normalized(row[0]) not in heldout]
    with atomic_write(os.path.join(out_dir, "chatbot.csv")) as dst:
        dst.write(csv_text(header, kept))
    # 3i4k is `label\tutterance` with no header; a header lets the TSV reader take the text column.
    dropped_3i4k = 0
    with open(os.path.join(shared, SOURCES["3i4k"][0]), encoding="utf-8") as src, \
            atomic_write(os.path.join(out_dir, "3i4k.tsv")) as dst:
        dst.write("label\tutterance\n")
        for line in src:
            if normalized(line.split("\t", 1)[-1]) in heldout:
                dropped_3i4k += 1
                continue
            dst.write(line)
    return {"intent_test_utterances": len(heldout), "dropped_chatbot_test_rows": len(rows) - len(kept),
            "dropped_3i4k_test_lines": dropped_3i4k}


def stage_others(shared, out_dir):
    shutil.copy(os.path.join(shared, SOURCES["hate_speech_unlabeled"][0]),
                os.path.join(out_dir, "hate_speech_unlabeled_comments.txt"))
    stage_written(shared, out_dir)


def stage_corpus(output_dir, shared=SHARED, max_reviews=None):
    os.makedirs(output_dir, exist_ok=True)
    stats = stage_reviews(shared, output_dir, max_reviews)
    stats.update(stage_intent_text(shared, output_dir))
    stage_others(shared, output_dir)
    stats["dropped_benchmark_text"] = drop_benchmark_lines(output_dir, benchmark_sentences(shared))
    stats["sources"] = {name: {"path": path, "license": license} for name, (path, license) in SOURCES.items()}
    write_json(os.path.join(os.path.dirname(os.path.abspath(output_dir)), "corpus_sources.json"), stats)
    return stats


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output_dir", required=True)
    p.add_argument("--max_reviews", type=int, default=None, help="stop after this many reviews (for a quick run)")
    args = p.parse_args()
    print(json.dumps(stage_corpus(args.output_dir, max_reviews=args.max_reviews), ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
