"""Keep a pretraining corpus's text out of the examples a table evaluates on.

A benchmark's evaluation split must not contain text the model was pretrained on. The
experiments' corpora drop the test sets they know of, but shared sources overlap in ways no
one listed: KLUE-NLI draws its premises from Korean Wikinews, which the written corpus
(`../shared/data/pretrain-text`) also holds. So the table checks every evaluation file
against the corpus the models were pretrained on, and drops each example that has a sentence
of at least ``MIN_CHARS`` characters (whitespace collapsed) found verbatim as a sentence of the corpus.

The threshold keeps formulaic short sentences, which any Korean text repeats
("삼가 고인의 명복을 빕니다.", "내 인생 최고의 영화"), from counting as leaks.

The same check runs the other way when an experiment builds its corpus: ``benchmark_sentences``
collects every sentence the table can evaluate on, and ``drop_benchmark_lines`` /
``holds_benchmark_text`` keep the lines that hold one out of the pretraining text.
"""
import csv
import io
import json
import os
import re
import tempfile

from experiments.intent_splits import normalized
from util.files import atomic_write

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIN_CHARS = 20
HEADERLESS = {"intent-3i4k"}  # one-example-per-line files without a column header (3i4k's label<TAB>text)
# Tasks whose training split is carved out of a released dev file (experiments/task_data.py):
# with another --split_seed any of its examples may be evaluated, so all of it is benchmark text.
DEV_CARVED = {"kornli", "paws", "korquad", "klue-nli", "klue-sts", "klue-ner", "klue-dp"}
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")


def sentences(text):
    """The whole text and each of its sentences, whitespace collapsed, at least MIN_CHARS long."""
    text = normalized(text)
    pieces = {text} | set(_SENTENCE_END.split(text))
    return {p for p in pieces if len(p) >= MIN_CHARS}


def corpus_sentences(paths):
    """Every sentence of MIN_CHARS or more in the corpus files (one sentence or document per line);
    a directory stands for every file under it."""
    from util.errors import UserInputError

    files = []
    for path in paths:
        if os.path.isdir(path):
            files += sorted(os.path.join(d, n) for d, _, names in os.walk(path) for n in names)
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise UserInputError(f"{path}: no such pretraining corpus file or directory")
    found = set()
    for path in files:
        with open(path, encoding="utf-8") as f:
            try:
                for line in f:
                    found |= sentences(line)
            except UnicodeDecodeError:
                raise UserInputError(f"{path}: not UTF-8 text (a pretraining corpus is read line by line)") from None
    return found


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _strings(value)


def _leaks(texts, corpus):
    return any(sentences(t) & corpus for t in texts)


def filter_file(path, corpus, header=True):
    """Drop the examples of one evaluation file that hold corpus text; returns (kept, dropped).
    ``header``: a one-example-per-line file starts with a column header (kept, not counted)."""
    return _filter(path, lambda texts: not _leaks(texts, corpus), header)


def file_sentences(path, header=True):
    """Every sentence (MIN_CHARS or more) of every example's text in an evaluation file."""
    found = set()

    def collect(texts):
        for text in texts:
            found.update(sentences(text))
        return True

    _filter(path, collect, header)
    return found


def _filter(path, keep, header):
    """Keep the examples for which ``keep(their texts)`` is true; the file is rewritten only
    when one is dropped. Returns (kept, dropped).

    Formats, as the task readers take them: a JSON list of examples (KLUE), SQuAD JSON
    (KorQuAD: a paragraph goes with its questions), a .csv of rows, blank-line-separated blocks
    (KLUE-NER and -DP TSV: one sentence each), and one example per line (every other TSV/TXT).
    """
    with open(path, encoding="utf-8") as f:
        raw = f.read()
    if path.endswith(".json"):
        data = json.loads(raw)
        if isinstance(data, list):
            kept = [e for e in data if keep(list(_strings(e)))]
            out, total = json.dumps(kept, ensure_ascii=False), (len(kept), len(data) - len(kept))
        else:
            kept_count = dropped = 0
            for article in data["data"]:
                paragraphs = []
                for paragraph in article["paragraphs"]:
                    n = len(paragraph["qas"])
                    if not keep(list(_strings(paragraph))):
                        dropped += n
                    else:
                        paragraphs.append(paragraph)
                        kept_count += n
                article["paragraphs"] = paragraphs
            out, total = json.dumps(data, ensure_ascii=False), (kept_count, dropped)
    elif path.endswith(".csv"):
        rows = list(csv.reader(io.StringIO(raw)))
        kept = rows[:1] + [r for r in rows[1:] if keep(r)]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(kept)
        out, total = buffer.getvalue(), (len(kept) - 1, len(rows) - len(kept))
    elif re.search(r"\n[ \t]*\n", raw.strip()):
        blocks = [b for b in re.split(r"\n[ \t]*\n", raw.strip("\n")) if b.strip()]
        kept = [b for b in blocks if keep(_block_texts(b))]
        out, total = "\n\n".join(kept) + "\n\n", (len(kept), len(blocks) - len(kept))
    else:
        lines = [line for line in raw.split("\n") if line.strip()]
        head, lines = (lines[:1], lines[1:]) if header else ([], lines)
        kept = [line for line in lines if keep(line.split("\t"))]
        out, total = "\n".join(head + kept) + "\n", (len(kept), len(lines) - len(kept))
    if total[1]:
        with atomic_write(path) as f:
            f.write(out)
    return total


def _block_texts(block):
    """A NER/DP block's sentence, both ways it is written: the text after the tab of a
    ``## id<TAB>text`` line (DP's plain sentence; NER's carries ``<entity:TAG>`` marks), and the
    first column's characters joined (NER's one character per row, spaces included)."""
    lines = block.split("\n")
    texts = [line.split("\t", 1)[1] for line in lines if line.startswith("##") and "\t" in line]
    return texts + ["".join(line.split("\t")[0] for line in lines if not line.startswith("#"))]


def task_files(task, data_dir, files, keys=("dev_file", "test_file")):
    """The files of ``keys`` that the task's shipped YAML (with the layout's ``files`` overrides)
    names and ``data_dir`` holds."""
    from finetune.config import read_yaml

    values = dict(read_yaml(os.path.join(ROOT, "conf", task, "electra-small.yaml"))[0], **files)
    paths = [os.path.join(data_dir, values[k]) for k in keys if values.get(k)]
    return [p for p in paths if os.path.isfile(p)]


def benchmark_sentences(shared=None):
    """Every sentence (MIN_CHARS or more) of every evaluation split the task table can test on,
    uncapped, with the whole source of a dev-carved split: the text no pretraining corpus an
    experiment builds may hold."""
    from experiments import task_data

    found = set()
    with tempfile.TemporaryDirectory() as tmp:
        for task in task_data.TASKS:
            data_dir = os.path.join(tmp, task)
            data = task_data.lay_out(task, data_dir, shared=shared or task_data.SHARED)
            keys = ("train_file", "dev_file", "test_file") if task in DEV_CARVED else ("dev_file", "test_file")
            for path in task_files(task, data_dir, data.files, keys):
                found |= file_sentences(path, header=task not in HEADERLESS)
    return found


def holds_benchmark_text(line, benchmark):
    """Whether a corpus line (a sentence, a document, or a TSV row) holds a sentence of ``benchmark``."""
    return _leaks(line.split("\t"), benchmark)


def drop_benchmark_lines(directory, benchmark):
    """Rewrite every file under ``directory`` without the lines (sentences, documents, TSV rows)
    that hold a sentence of ``benchmark``; returns {file relative to directory: lines dropped}."""
    return drop_lines(directory, lambda line: holds_benchmark_text(line, benchmark))


def drop_lines(directory, drop):
    """Rewrite every file under ``directory`` without its non-blank lines for which ``drop(line)``
    is true (a file nothing is dropped from is left as it is); returns {file relative to
    directory: lines dropped}."""
    dropped = {}
    for root, _, names in os.walk(directory):
        for name in sorted(names):
            path = os.path.join(root, name)
            with open(path, encoding="utf-8") as f:
                lines = f.readlines()
            kept = [line for line in lines if not line.strip() or not drop(line)]
            if len(kept) < len(lines):
                with atomic_write(path) as f:
                    f.writelines(kept)
                dropped[os.path.relpath(path, directory)] = len(lines) - len(kept)
    return dropped
