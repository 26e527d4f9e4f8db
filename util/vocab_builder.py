"""build_vocab.py's work: a cleaned corpus -> vocab.txt + tokenizer_config.json.

Both kinds follow the published Dialog-KoELECTRA layout: [PAD] [UNK] [CLS] [SEP] [MASK] at
ids 0-4, then [unused0..N-1], then learned entries; ``vocab_size`` counts all of them.

``wordpiece`` is trained by the ``tokenizers`` library with BERT's normaliser and
pre-tokenizer (accents never stripped: that would decompose Hangul).

``mecab_wordpiece`` is built as the published system built its vocab (huggingface_konlpy's
``KoNLPyBertWordPieceTrainer``), which learns no WordPiece merges at all: after the special
and unused tokens come the corpus's most frequent characters, up to ``limit_alphabet``
entries counted from the top of the file, then the pieces util/mecab_wordpiece.py cuts
(an eojeol's first morpheme bare, later ones ``##``-prefixed), most frequent first, those
seen at least ``min_frequency`` times, until ``vocab_size``. Count ties keep the order of
first appearance in the corpus, so the same corpus always gives the same file.
"""
import collections
import itertools
import logging
import multiprocessing
import os
import sys
import time

from tqdm import tqdm

from util import signals
from util.errors import UserInputError
from util.files import atomic_write, write_json
from util.mecab_wordpiece import EojeolPieces
from util.tokenization import (CONFIG_NAME, SPECIAL_TOKENS, TOKENIZER_TYPES, VOCAB_NAME,
                               KoTokenizer, tokenizer_config)

LINES_PER_CHUNK = 2000
UNK_SAMPLE_LINES = 20000

log = logging.getLogger(__name__)


def corpus_lines(corpus):
    with open(corpus, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            line = line.strip()
            if line:
                yield line_no, line


def check_corpus(corpus):
    if not os.path.isfile(corpus):
        raise UserInputError(f"corpus file not found: {corpus}")
    try:
        for _ in corpus_lines(corpus):
            return
    except UnicodeDecodeError as e:
        raise UserInputError(f"{corpus}: not UTF-8 ({e.reason} at byte {e.start}); run preprocess.py first") from None
    raise UserInputError(f"corpus file has no text: {corpus}")


def _count_chunk(args):
    """(character counts, piece counts) of some corpus lines, in order of first appearance."""
    lines, do_lower_case = args
    pieces = EojeolPieces()
    chars, counts = collections.Counter(), collections.Counter()
    for line in lines:
        if do_lower_case:
            line = line.lower()
        chars.update(line)
        counts.update(pieces.split_text(line))
    del chars[" "]  # the published trainer drops spaces only; other characters all count
    return chars, counts


def _count_corpus(corpus, do_lower_case, num_processes):
    """Character and piece counts over the corpus; chunks merge in file order, so ties
    keep the order of first appearance whatever ``num_processes``."""
    def chunks():
        lines = (line for _, line in corpus_lines(corpus))
        while True:
            chunk = list(itertools.islice(lines, LINES_PER_CHUNK))
            if not chunk:
                return
            yield chunk, do_lower_case

    chars, counts = collections.Counter(), collections.Counter()
    progress = tqdm(desc="mecab", unit=" lines")
    if num_processes <= 1:
        results = map(_count_chunk, chunks())
        pool = None
    else:
        # Workers end with this process and leave Ctrl-C to it (util/signals.py).
        pool = multiprocessing.get_context("spawn").Pool(num_processes, initializer=signals.as_worker,
                                                         initargs=(os.getpid(),))
        results = pool.imap(_count_chunk, chunks(), chunksize=1)
    try:
        for chunk_chars, chunk_counts in results:
            chars.update(chunk_chars)
            counts.update(chunk_counts)
            progress.update(LINES_PER_CHUNK)
    except BaseException:
        if pool is not None:
            pool.terminate()  # an interrupt or a failed chunk: the chunks in flight are not waited for
        raise
    finally:
        progress.close()
        if pool is not None:
            pool.close()
            pool.join()
    return chars, counts


def _by_count(counter):
    # sorted() is stable: equal counts keep the counter's order of first appearance.
    return sorted(counter, key=lambda k: -counter[k])


def published_mecab_vocab(chars, counts, special, vocab_size, min_frequency, limit_alphabet):
    """The vocab's entries from the counts, as huggingface_konlpy's trainer lays them out."""
    alphabet = (special + [c for c in _by_count(chars) if c not in special])[:limit_alphabet]
    known = set(alphabet)
    pieces = [p for p in _by_count(counts) if p not in known and counts[p] >= min_frequency]
    return (alphabet + pieces)[:vocab_size]


def _unk_rate(tokenizer, corpus):
    lines = [line for _, line in itertools.islice(corpus_lines(corpus), UNK_SAMPLE_LINES)]
    ids = [i for seq in tokenizer.encode_batch(lines) for i in seq]
    return (sum(i == tokenizer.unk_id for i in ids) / len(ids)) if ids else 0.0


def _train_wordpiece(corpus, special, vocab_size, min_frequency, limit_alphabet, do_lower_case):
    from tokenizers import BertWordPieceTokenizer

    trainer = BertWordPieceTokenizer(clean_text=True, handle_chinese_chars=True,
                                     strip_accents=False, lowercase=do_lower_case)
    # The Rust progress bars draw on a terminal; into a pipe or a log they leave only blank lines.
    trainer.train([corpus], vocab_size=vocab_size, min_frequency=min_frequency,
                  limit_alphabet=limit_alphabet, special_tokens=special, wordpieces_prefix="##",
                  show_progress=sys.stderr.isatty())
    tokens = [token for token, _ in sorted(trainer.get_vocab().items(), key=lambda item: item[1])]
    if tokens[:len(special)] != special:
        raise RuntimeError("tokenizers did not place the special tokens first")  # library contract
    return tokens


def shortfall_note(stats, min_frequency):
    """In words, when the vocab came out smaller than asked (else None)."""
    if stats["vocab_size"] >= stats["requested_vocab_size"]:
        return None
    return (f"note: vocab.txt has {stats['vocab_size']:,} entries, fewer than the {stats['requested_vocab_size']:,} "
            f"asked (--vocab_size): the corpus has no more {stats['tokenizer_type']} pieces seen at least "
            f"--min_frequency {min_frequency} times; a larger corpus"
            + (" or a lower --min_frequency gives more" if min_frequency > 1 else " gives more"))


def build_vocab(corpus, output_dir, tokenizer_type="wordpiece", vocab_size=40000, min_frequency=3,
                limit_alphabet=6000, unused_size=500, do_lower_case=False, num_processes=1):
    """Train the vocab and write it; returns a stats dict."""
    if tokenizer_type not in TOKENIZER_TYPES:
        raise UserInputError(f"--tokenizer {tokenizer_type!r} is not one of {', '.join(TOKENIZER_TYPES)}")
    if unused_size < 0:
        raise UserInputError(f"--unused_size must be 0 or more, got {unused_size}")
    if num_processes < 1:
        raise UserInputError(f"--num_processes must be at least 1, got {num_processes}")
    reserved = len(SPECIAL_TOKENS) + unused_size
    if vocab_size <= reserved:
        raise UserInputError(
            f"--vocab_size {vocab_size} leaves no room for learned pieces after "
            f"{len(SPECIAL_TOKENS)} special and {unused_size} unused tokens")
    if min_frequency < 1 or limit_alphabet < 1:
        raise UserInputError("--min_frequency and --limit_alphabet must be at least 1")
    check_corpus(corpus)

    start = time.time()
    special = SPECIAL_TOKENS + [f"[unused{i}]" for i in range(unused_size)]
    if tokenizer_type == "mecab_wordpiece":
        chars, counts = _count_corpus(corpus, do_lower_case, num_processes)
        tokens = published_mecab_vocab(chars, counts, special, vocab_size, min_frequency, limit_alphabet)
    else:
        # Every kept character can enter the vocab twice (c and ##c) before any merge, so a
        # larger alphabet than half the free room would overshoot vocab_size. The published
        # settings (40000 / 6000 / 500) are far from this cap.
        limit_alphabet = min(limit_alphabet, (vocab_size - reserved) // 2)
        tokens = _train_wordpiece(corpus, special, vocab_size, min_frequency, limit_alphabet, do_lower_case)

    # A vocab.txt present means a complete vocab: drop the old one first, write the
    # config, and put vocab.txt in place last.
    vocab_path = os.path.join(output_dir, VOCAB_NAME)
    if os.path.exists(vocab_path):
        os.remove(vocab_path)
    write_json(os.path.join(output_dir, CONFIG_NAME), tokenizer_config(tokenizer_type, do_lower_case))
    with atomic_write(vocab_path) as f:
        f.writelines(token + "\n" for token in tokens)

    tokenizer = KoTokenizer.from_vocab(output_dir)
    return {
        "vocab_file": vocab_path,
        "vocab_size": len(tokens),
        "requested_vocab_size": vocab_size,
        "learned_entries": len(tokens) - reserved,
        "limit_alphabet_used": limit_alphabet,
        "tokenizer_type": tokenizer_type,
        "do_lower_case": do_lower_case,
        "unk_rate_sample": round(_unk_rate(tokenizer, corpus), 6),
        "seconds": round(time.time() - start, 3),
    }
