"""build_vocab.py's work: a cleaned corpus -> vocab.txt + tokenizer_config.json.

WordPiece is trained by the ``tokenizers`` library with BERT's normaliser and
pre-tokenizer (accents never stripped: that would decompose Hangul). The vocab follows
the published Dialog-KoELECTRA layout: [PAD] [UNK] [CLS] [SEP] [MASK] at ids 0-4, then
[unused0..N-1], then learned entries; ``vocab_size`` counts all of them.

``mecab_wordpiece`` trains on mecab-ko morphemes separated by spaces (what
huggingface_konlpy's trainer did for the published vocab), so no piece spans two
morphemes; the same split is applied at tokenization time by util.tokenization.
"""
import itertools
import logging
import multiprocessing
import os
import time

from tqdm import tqdm

from util.errors import UserInputError
from util.files import atomic_write, write_json
from util.tokenization import (CONFIG_NAME, SPECIAL_TOKENS, TOKENIZER_TYPES, VOCAB_NAME,
                               KoTokenizer, MecabSplitter, tokenizer_config)

LINES_PER_CHUNK = 2000
UNK_SAMPLE_LINES = 20000

log = logging.getLogger(__name__)


def _corpus_lines(corpus):
    with open(corpus, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            line = line.strip()
            if line:
                yield line_no, line


def _check_corpus(corpus):
    if not os.path.isfile(corpus):
        raise UserInputError(f"corpus file not found: {corpus}")
    try:
        for _ in _corpus_lines(corpus):
            return
    except UnicodeDecodeError as e:
        raise UserInputError(f"{corpus}: not UTF-8 ({e.reason} at byte {e.start}); run preprocess.py first") from None
    raise UserInputError(f"corpus file has no text: {corpus}")


def _mecab_split_chunk(lines):
    splitter = MecabSplitter()
    return [splitter(line) for line in lines]


def _mecab_split_lines(corpus, num_processes):
    """Morpheme-split corpus lines, in order, split across worker processes."""
    def chunks():
        lines = (line for _, line in _corpus_lines(corpus))
        while True:
            chunk = list(itertools.islice(lines, LINES_PER_CHUNK))
            if not chunk:
                return
            yield chunk

    progress = tqdm(desc="mecab", unit=" lines")
    if num_processes <= 1:
        for chunk in chunks():
            progress.update(len(chunk))
            yield from _mecab_split_chunk(chunk)
    else:
        with multiprocessing.get_context("spawn").Pool(num_processes) as pool:
            for split in pool.imap(_mecab_split_chunk, chunks(), chunksize=1):
                progress.update(len(split))
                yield from split
    progress.close()


def _unk_rate(tokenizer, corpus):
    lines = [line for _, line in itertools.islice(_corpus_lines(corpus), UNK_SAMPLE_LINES)]
    ids = [i for seq in tokenizer.encode_batch(lines) for i in seq]
    return (sum(i == tokenizer.unk_id for i in ids) / len(ids)) if ids else 0.0


def build_vocab(corpus, output_dir, tokenizer_type="wordpiece", vocab_size=40000, min_frequency=3,
                limit_alphabet=6000, unused_size=500, do_lower_case=False, num_processes=1):
    """Train the vocab and write it; returns a stats dict."""
    from tokenizers import BertWordPieceTokenizer

    if tokenizer_type not in TOKENIZER_TYPES:
        raise UserInputError(f"--tokenizer {tokenizer_type!r} is not one of {', '.join(TOKENIZER_TYPES)}")
    reserved = len(SPECIAL_TOKENS) + unused_size
    if unused_size < 0 or vocab_size <= reserved:
        raise UserInputError(
            f"--vocab_size {vocab_size} leaves no room for learned pieces after "
            f"{len(SPECIAL_TOKENS)} special and {unused_size} unused tokens")
    if min_frequency < 1 or limit_alphabet < 1:
        raise UserInputError("--min_frequency and --limit_alphabet must be at least 1")
    _check_corpus(corpus)

    # Every kept character can enter the vocab twice (c and ##c) before any merge, so a
    # larger alphabet than half the free room would overshoot vocab_size. The published
    # settings (40000 / 6000 / 500) are far from this cap.
    limit_alphabet = min(limit_alphabet, (vocab_size - reserved) // 2)
    start = time.time()
    special = SPECIAL_TOKENS + [f"[unused{i}]" for i in range(unused_size)]
    trainer = BertWordPieceTokenizer(clean_text=True, handle_chinese_chars=True,
                                     strip_accents=False, lowercase=do_lower_case)
    train_args = dict(vocab_size=vocab_size, min_frequency=min_frequency,
                      limit_alphabet=limit_alphabet, special_tokens=special, wordpieces_prefix="##")
    if tokenizer_type == "mecab_wordpiece":
        trainer.train_from_iterator(_mecab_split_lines(corpus, num_processes), **train_args)
    else:
        trainer.train([corpus], **train_args)
    vocab = sorted(trainer.get_vocab().items(), key=lambda item: item[1])
    tokens = [token for token, _ in vocab]
    if tokens[:reserved] != special:
        raise RuntimeError("tokenizers did not place the special tokens first")  # library contract

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
