"""Examples/s of build_pretraining_dataset against a pure-Python WordPiece builder.

    .venv/bin/python -m bench.bench_dataset

Corpus: the NSMC raw reviews (every review a line, every movie a document, in one 60 MB
file, so byte-range chunking is what parallelises it) plus the plain-text files of
../shared/data/pretrain-text (3i4k with its label column dropped; the tarred
korean-english-park files are left out). A 32k WordPiece vocab is trained on the same text.

(a) baseline: BERT's BasicTokenizer + WordpieceTokenizer logic in pure Python, one sentence
    at a time, feeding the same ExampleBuilder and writer, the way upstream's script works;
(b) ours, 1 process (Rust tokenizers, batched); (c) ours, 2 processes; (d) ours, 1 process,
writing the records through TensorFlow (tf.train.Example, tf.io.TFRecordWriter) instead of
protobuf and google-crc32c (pretrain/tfrecords.py), run twice beside (b) run twice again.
Each configuration runs in a fresh child process (TensorFlow imported before the clock
starts) that reports its wall time; the parent samples the memory of its process tree.
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

SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "shared", "data")
NSMC_RAW = os.path.join(SHARED, "nsmc", "raw_reviews.tar.gz")
PRETRAIN_TEXT = os.path.join(SHARED, "pretrain-text")
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
    from pretrain.dataset_builder import ExampleBuilder
    from pretrain.dataset_writer import ShardWriter, clear_output_dir, example_features
    from util.files import list_files

    tokenizer = PythonWordPiece(os.path.join(vocab_dir, "vocab.txt"))
    cls_id, sep_id = tokenizer.vocab["[CLS]"], tokenizer.vocab["[SEP]"]
    builder = ExampleBuilder(MAX_SEQ_LENGTH, random.Random(12345))
    clear_output_dir(output_dir)

    def emit(segments):
        if segments is not None:
            writer.write(make_tf_example(*example_features(*segments, MAX_SEQ_LENGTH, cls_id, sep_id)))

    with ShardWriter(output_dir, NUM_OUT_FILES, record_io="tensorflow") as writer:
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

def cpu_seconds():
    """User + system time of this process and its finished children (the workers, Rust's threads)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def child(spec):
    import tensorflow  # noqa: F401  (not on the clock)

    start, cpu_start = time.perf_counter(), cpu_seconds()
    if spec["mode"] == "baseline":
        examples = run_baseline(spec["corpus_dir"], spec["vocab_dir"], spec["output_dir"])
    else:
        from pretrain.dataset_builder import DatasetOptions, build_dataset

        examples = build_dataset(DatasetOptions(
            corpus_dir=spec["corpus_dir"], vocab_file=spec["vocab_dir"], output_dir=spec["output_dir"],
            max_seq_length=MAX_SEQ_LENGTH, num_processes=spec["num_processes"],
            num_out_files=NUM_OUT_FILES, progress=False, record_io=spec["record_io"]))["examples"]
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
    digest = hashlib.sha256()
    for path in sorted(glob.glob(os.path.join(spec["output_dir"], "pretrain_data.tfrecord*"))):
        digest.update(open(path, "rb").read())
    print(json.dumps({"examples": examples, "seconds": seconds, "cpu_seconds": cpu, "sha256": digest.hexdigest()}))


def tree_pss_mb(root):
    """Proportional set size of ``root`` and its descendants: shared pages are counted once."""
    parents = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parents[int(stat.split("/")[2])] = int(fields[1])
        except (OSError, IndexError, ValueError):
            pass
    tree, grew = {root}, True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= children
        grew = bool(children)
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                total += sum(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except OSError:
            pass
    return total / 1024


def measure(mode, corpus_dir, vocab_dir, work, num_processes=1, record_io="protobuf"):
    spec = {"mode": mode, "corpus_dir": corpus_dir, "vocab_dir": vocab_dir, "num_processes": num_processes,
            "record_io": record_io, "output_dir": os.path.join(work, f"out_{mode}_{num_processes}_{record_io}")}
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen([sys.executable, "-m", "bench.bench_dataset", "--child", json.dumps(spec)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, tree_pss_mb(process.pid))
        time.sleep(0.5)
    out, err = process.communicate()
    if process.returncode:
        raise RuntimeError(f"{mode} run failed:\n{err}")
    result = json.loads(out.strip().splitlines()[-1])
    result["examples_per_s"] = result["examples"] / result["seconds"]
    result["examples_per_cpu_s"] = result["examples"] / result["cpu_seconds"]
    result["mb"] = corpus_mb(corpus_dir)
    result["pss_mb"] = peak
    print(mode, num_processes, corpus_dir, {k: round(result[k], 1) for k in (
        "examples", "seconds", "cpu_seconds", "examples_per_s", "pss_mb")}, flush=True)
    return result


# ---- the corpus --------------------------------------------------------------------------

def median_rate(results, key="examples_per_s"):
    values = sorted(r[key] for r in results)
    return (values[(len(values) - 1) // 2] + values[len(values) // 2]) / 2


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
        with open(source, encoding="utf-8") as f, open(os.path.join(directory, f"{i:02d}_{os.path.basename(source)}"), "w",
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


def tokenizer_speeds(path, vocab_dir, limit_bytes=4_000_000):
    """MB of text per CPU-second for the three ways to get ids, on the first lines of ``path``."""
    from pretrain.dataset_builder import TOKENIZE_BATCH, WordCachedEncoder
    from util.tokenization import KoTokenizer

    lines, size = [], 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if size >= limit_bytes:
                break
            if line.strip():
                lines.append(line.strip())
                size += len(line.encode("utf-8"))
    tokenizer = KoTokenizer.from_vocab(vocab_dir)
    python = PythonWordPiece(os.path.join(vocab_dir, "vocab.txt"))
    cached = WordCachedEncoder(tokenizer)
    batches = [lines[i:i + TOKENIZE_BATCH] for i in range(0, len(lines), TOKENIZE_BATCH)]
    speeds = {}
    for name, run in (("pure Python, a line at a time", lambda: [python.convert_tokens_to_ids(python.tokenize(x))
                                                                 for x in lines]),
                      ("Rust encode_batch", lambda: [tokenizer.encode_batch(b) for b in batches]),
                      ("Rust + word cache (cold)", lambda: [cached.encode_batch(b) for b in batches])):
        start = time.process_time()
        run()
        speeds[name] = size / 1e6 / (time.process_time() - start)
    return size / 1e6, speeds


# ---- the report ----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--baseline_fraction", type=float, default=1 / 10,
                        help="share of every file the slow baseline (and ours, for the ratio) reads")
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

        speeds = [(name, *tokenizer_speeds(os.path.join(full, name), vocab))
                  for name in ("nsmc_reviews.txt", "02_unesco_report.txt")]
        subset = os.path.join(work, "subset")
        write_subset(full, subset, args.baseline_fraction)
        base_sub = measure("baseline", subset, vocab, os.path.join(work, "sub"))
        ours_sub = measure("ours", subset, vocab, os.path.join(work, "sub"), 1)
        ours_1 = measure("ours", full, vocab, work, 1)
        ours_2 = measure("ours", full, vocab, work, 2)
        # TF's record writer against ours, alternated so that a change of load hits both.
        writers = {"tensorflow": [], "protobuf": []}
        for record_io in ("tensorflow", "protobuf", "tensorflow", "protobuf"):
            writers[record_io].append(measure("ours", full, vocab, work, 1, record_io))
        # Scaling on distinct text (copies would be all word-cache hits): 1x = 1/16 of every
        # file, 4x = 1/4, 16x = the whole corpus (the 1-process run above).
        scaling = []
        for times in (1, 4):
            corpus = os.path.join(work, f"scale_{times}")
            write_subset(full, corpus, times / 16)
            scaling.append((times, measure("ours", corpus, vocab, os.path.join(work, f"s{times}"), 1)))
        scaling.append((16, ours_1))

    def row(name, r):
        return (f"| {name} | {r['mb']:.1f} | {r['examples']:,} | {r['seconds']:.1f} | "
                f"{r['examples_per_s']:,.0f} | {r['cpu_seconds']:.1f} | {r['examples_per_cpu_s']:,.0f} | "
                f"{r['pss_mb']:.0f} |")

    header = ("| run | corpus MB | examples | seconds | examples/s | CPU seconds | examples/CPU-s | peak memory MB |\n"
              "|---|---|---|---|---|---|---|---|")
    one = scaling[0][1]
    body = [
        "Corpus: NSMC raw reviews (712k reviews from `raw_reviews.tar.gz`; a review a line, a movie a "
        "document, all in one 62 MB file, so the 2-process run splits it by byte ranges) plus the plain-text "
        "files of `pretrain-text` (3i4k without its labels; the tarred korean-english-park files left out). "
        f"Vocab: 32k WordPiece trained with `tokenizers` on the same text. max_seq_length {MAX_SEQ_LENGTH}, "
        f"{NUM_OUT_FILES} shards. Each run is a fresh process with TensorFlow imported before the clock "
        "starts; peak memory is the proportional set size (shared pages counted once) of the run's whole "
        "process tree, sampled every 0.5 s, TensorFlow's ~450 MB included. The ratios come from runs made "
        "minutes apart; the load average above says how busy the machine was.",
        "",
        "Baseline (a): BERT's FullTokenizer (BasicTokenizer + WordpieceTokenizer) rewritten in pure Python "
        "with upstream's structure, one line at a time, and a fresh `tf.train.Example` per example, as "
        "upstream's `build_pretraining_dataset.py` does; it feeds the same example builder and shard writer. "
        f"It is too slow for the whole corpus, so (a) and (b) are compared on the first "
        f"{args.baseline_fraction:.0%} of every file. Its token ids equal ours on {same:,}/{sampled:,} sampled "
        "lines (the difference: Rust's normaliser drops private-use characters, BERT's Python keeps them).",
        "",
        header,
        row("(a) baseline, pure-Python WordPiece, subset", base_sub),
        row("(b) ours, 1 process, subset", ours_sub),
        row("(b) ours, 1 process, full corpus", ours_1),
        row("(c) ours, 2 processes, full corpus", ours_2),
        *[row(f"(d) ours, 1 process, full corpus, records written by {name}", r)
          for pair in zip(writers["tensorflow"], writers["protobuf"]) for name, r in
          zip(("TensorFlow", "protobuf + google-crc32c"), pair)],
        "",
        f"- (b)/(a) on the same subset: **{ours_sub['examples_per_s'] / base_sub['examples_per_s']:.1f}x** "
        f"in examples/s, {ours_sub['examples_per_cpu_s'] / base_sub['examples_per_cpu_s']:.1f}x in examples per "
        f"CPU-second; full-corpus (b) against subset (a): "
        f"{ours_1['examples_per_s'] / base_sub['examples_per_s']:.1f}x. Target >= 5x: "
        f"**{'met' if ours_1['examples_per_s'] >= 5 * base_sub['examples_per_s'] else 'not met'}** (see below).",
        f"- (c)/(b) on the full corpus: **{ours_2['examples_per_s'] / ours_1['examples_per_s']:.2f}x**. "
        "With 1 process the Rust tokenizer already spreads each batch over both cores (with 2, each "
        "worker tokenizes on one thread), so a second process gains only what that threading leaves "
        "on the table, and nothing when other work holds the cores.",
        f"- Examples, 1 vs 2 processes: {ours_1['examples']:,} vs {ours_2['examples']:,} (difference "
        f"{abs(ours_1['examples'] - ours_2['examples'])}); shards byte-identical: "
        f"{'yes' if ours_1['sha256'] == ours_2['sha256'] else 'NO'}. Chunks and their random seeds do not "
        "depend on the process count, so changing it has no boundary effects at all.",
        f"- (d), records written without TensorFlow against through it (median of "
        f"{len(writers['protobuf'])} alternated runs each): **{median_rate(writers['protobuf']) / median_rate(writers['tensorflow']):.2f}x** "
        f"in examples/s, {median_rate(writers['protobuf'], 'examples_per_cpu_s') / median_rate(writers['tensorflow'], 'examples_per_cpu_s'):.2f}x "
        f"in examples per CPU-second; shards byte-identical: "
        f"{'yes' if len({r['sha256'] for rs in writers.values() for r in rs} | {ours_1['sha256']}) == 1 else 'NO'}. "
        "The builder writes without TensorFlow by default (pretrain/dataset_writer.py); its records are a "
        "small share of the work next to tokenizing.",
        "",
        "Scaling (ours, 1 process, distinct text: 1x = the first 1/16 of every file, 4x = the first 1/4, "
        "16x = all of it):",
        "",
        header,
    ]
    body += [row(f"{times}x", r) for times, r in scaling]
    body += ["", "Seconds per 1x of text: " + ", ".join(
        f"{t}x {r['seconds'] / (r['mb'] / one['mb']) / one['seconds']:.2f}" for t, r in scaling)
        + " (relative to the 1x run; 1.00 = linear, below 1 = the word cache hitting more often). "
        "Peak memory: " + ", ".join(f"{t}x {r['pss_mb']:.0f} MB" for t, r in scaling) + " (about 330 MB of "
        "it is Python + TensorFlow + the tokenizer); what grows is the word cache filling up to its "
        "200k-word cap, after which memory is flat: a process holds one 4 MiB chunk and at most two "
        "chunks per process are in flight."]
    body += ["", "Tokenizer alone, MB of text per CPU-second (CPU time counts every thread):", "",
             "| text | MB | " + " | ".join(speeds[0][2]) + " |", "|---|---|" + "---|" * len(speeds[0][2])]
    body += [f"| {name} | {mb:.1f} | " + " | ".join(f"{v:.2f}" for v in values.values()) + " |"
             for name, mb, values in speeds]
    rust_gain = [values["Rust encode_batch"] / values["pure Python, a line at a time"] for _, _, values in speeds]
    body += ["", f"Why: on this Korean text the Rust tokenizer is only {rust_gain[0]:.1f}x (NSMC) and "
             f"{rust_gain[1]:.1f}x (UNESCO report) faster than the pure-Python one per CPU-second (its "
             "WordPiece tracks character alignments and allocates a string per token), and example "
             "assembly, serialization and writing cost both builders the same. The word cache pays off on "
             "formal text, where words repeat; NSMC comments are full of one-off spellings (about a quarter "
             "of their words are new to the cache), so there it gains little. The rest of the speed-up "
             "has to come from more cores."]
    write_section("dataset", "Pretraining dataset builder (build_pretraining_dataset.py)",
                  ".venv/bin/python -m bench.bench_dataset", "\n".join(body))


if __name__ == "__main__":
    main()
