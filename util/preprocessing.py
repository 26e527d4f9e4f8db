"""preprocess.py's work: raw corpus directory -> one cleaned text file.

Output contract (docs/design.md): UTF-8, NFC, one sentence a line, a blank line between
documents. Sentences are split with kss's rule-based "fast" backend, the algorithm of
kss < 3 that the published Dialog-KoELECTRA used (kss 1.3.1); it needs no morphological
analyser and gives the same split whatever the batch, so output never depends on
--num_processes.

The parent process reads documents and deduplicates; workers clean and split. Work goes
to the pool a bounded window at a time, so memory holds a few batches plus the hash set
of sentences seen (8 bytes a sentence), never the corpus.
"""
import contextlib
import hashlib
import logging
import multiprocessing
import os
import time

from tqdm import tqdm

from util import signals
from util.corpus_readers import ReadOptions, ReadStats, iter_documents
from util.errors import UserInputError
from util.files import atomic_write, list_files
from util.text_cleaning import clean_text

DOCS_PER_BATCH = 256
BATCHES_IN_FLIGHT_PER_WORKER = 4

log = logging.getLogger(__name__)


def _quiet_kss():
    # kss announces its backend choice on first use; it is chosen explicitly here.
    for name in ("kss", "Kss"):
        logging.getLogger(name).setLevel(logging.ERROR)


class _StaticTable(dict):
    """A rule table that answers a miss with a default and, unlike defaultdict, records nothing."""

    def __init__(self, entries, default):
        super().__init__(entries)
        self.default = default

    def __missing__(self, key):
        return self.default


def _freeze_kss_rule_tables():
    """Make kss's fast splitter give the same split for a text whatever it split before.

    kss 6 keeps its rules in defaultdicts; every lookup of an unknown character inserts
    it, and a later ``in`` test on the table then treats it as a rule. Splits came to
    depend on the process's history (so on --num_processes), and drifted from the rules
    themselves: after a few thousand texts "다니다가" was split as "다니다 / 가".
    Replacing the tables before the first split restores the intended, history-free rules.
    """
    from kss._modules.sentences import sentence_splitter_fast as fast

    if not isinstance(fast.Table, _StaticTable):
        no_rules = _StaticTable({}, 0)
        fast.Table = _StaticTable({stat: _StaticTable(rules, 0) for stat, rules in fast.Table.items()}, no_rules)


def split_sentences(text):
    import kss

    _freeze_kss_rule_tables()
    return kss.split_sentences(text, backend="fast", num_workers=1)


def clean_document(paragraphs):
    """Clean and sentence-split one document: returns (sentences, characters_removed)."""
    sentences, removed = [], 0
    for paragraph in paragraphs:
        cleaned, n = clean_text(paragraph)
        removed += n
        if not cleaned:
            continue
        for sentence in split_sentences(cleaned):
            sentence = sentence.strip()
            if sentence:
                sentences.append(sentence)
    return sentences, removed


def _clean_batch(batch):
    _quiet_kss()
    return [clean_document(doc) for doc in batch]


def _document_batches(paths, options, stats):
    batch = []
    for path in paths:
        for doc in iter_documents(path, options, stats):
            batch.append(doc)
            if len(batch) == DOCS_PER_BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def _cleaned_batches(batches, num_processes):
    """Cleaned batches in input order, at most a bounded number in flight.

    The workers end with this process (util/signals.py); an interrupt or error here ends the
    pool at once (Pool.__exit__ terminates it) instead of waiting for the batches in flight.
    """
    if num_processes <= 1:
        _quiet_kss()
        for batch in batches:
            yield _clean_batch(batch)
        return
    window = num_processes * BATCHES_IN_FLIGHT_PER_WORKER
    with multiprocessing.get_context("spawn").Pool(num_processes, initializer=signals.as_worker,
                                                   initargs=(os.getpid(),)) as pool:
        pending = []
        for batch in batches:
            pending.append(pool.apply_async(_clean_batch, (batch,)))
            if len(pending) >= window:
                yield pending.pop(0).get()
        for result in pending:
            yield result.get()


def _sentence_key(sentence):
    return hashlib.blake2b(sentence.encode("utf-8"), digest_size=8).digest()


def preprocess_corpus(corpus_dir, output_file, num_processes=1, options=None, dedup=True,
                      show_progress=True):
    """Clean every file under ``corpus_dir`` into ``output_file``; returns a stats dict.

    Raises UserInputError for a missing or empty directory and when no sentence at all
    survives (the warnings say why); otherwise bad files and lines are skipped and counted.
    """
    if num_processes < 1:
        raise UserInputError(f"--num_processes must be at least 1, got {num_processes}")
    options = options or ReadOptions()
    paths = list_files(corpus_dir)
    output_abs = os.path.abspath(output_file)
    paths = [p for p in paths if os.path.abspath(p) != output_abs]
    read_stats = ReadStats()
    seen = set()
    counts = {"documents": 0, "sentences_in": 0, "sentences_out": 0, "duplicates_dropped": 0,
              "characters_removed": 0}
    start = time.time()
    # Closed however this ends (an interrupt's line then starts on a line of its own), the pool first.
    with atomic_write(output_file) as out, \
            tqdm(desc="preprocess", unit=" docs", disable=not show_progress) as progress, \
            contextlib.closing(_cleaned_batches(_document_batches(paths, options, read_stats),
                                                num_processes)) as cleaned_batches:
        for cleaned in cleaned_batches:
            for sentences, removed in cleaned:
                counts["characters_removed"] += removed
                counts["sentences_in"] += len(sentences)
                written = 0
                for sentence in sentences:
                    if dedup:
                        key = _sentence_key(sentence)
                        if key in seen:
                            counts["duplicates_dropped"] += 1
                            continue
                        seen.add(key)
                    out.write(sentence + "\n")
                    written += 1
                if written:
                    out.write("\n")
                    counts["documents"] += 1
                    counts["sentences_out"] += written
            progress.update(len(cleaned))
        if counts["sentences_out"] == 0:
            reasons = "; ".join(read_stats.warnings[:3]) or "every line was empty after cleaning"
            raise UserInputError(f"no usable text under {corpus_dir} ({reasons})")
    counts.update(
        files=read_stats.files,
        files_skipped=read_stats.files_skipped,
        lines_in=read_stats.lines,
        lines_skipped=read_stats.lines_skipped,
        seconds=round(time.time() - start, 3),
        warnings=read_stats.warnings,
    )
    return counts
