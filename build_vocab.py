"""Train a WordPiece vocabulary (plain or mecab-ko morpheme-aware) on a cleaned corpus,
or extend a released one with a domain's pieces in its [unusedN] slots.

    python3 build_vocab.py --corpus preprocessed_data.txt --tokenizer mecab_wordpiece \
        --vocab_size 40000 --min_frequency 3 --limit_alphabet 6000 --unused_size 500

    python3 build_vocab.py --extend released/vocab.txt --corpus dialogue.txt --num_new 300 \
        --output_dir data/vocab_extended
"""
import argparse
import json
import sys

from util.errors import UserInputError, run_cli
from util.files import check_dir_can_be_made
from util.tokenization import TOKENIZER_TYPES
from util.vocab_builder import build_vocab, shortfall_note

# Training-only flags, with their defaults; given with --extend they are an error.
BUILD_DEFAULTS = {"vocab_size": 40000, "limit_alphabet": 6000, "unused_size": 500, "num_processes": 1}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True, help="raw or preprocessed text file (with --extend: the domain text)")
    p.add_argument("--tokenizer", "--tokenizer_type", dest="tokenizer", default=None, choices=TOKENIZER_TYPES,
                   help="wordpiece, or mecab_wordpiece to split into mecab-ko morphemes first (default wordpiece; "
                        "with --extend only for a vocab.txt with no tokenizer_config.json beside it)")
    p.add_argument("--vocab_size", type=int, help="entries in vocab.txt, special and unused included (default 40000)")
    p.add_argument("--min_frequency", type=int, default=3,
                   help="minimum count for a merge, or with --extend for a candidate (default 3)")
    p.add_argument("--limit_alphabet", type=int, help="initial characters kept before merges (default 6000)")
    p.add_argument("--unused_size", type=int, help="[unusedN] tokens after the special tokens (default 500)")
    p.add_argument("--output_dir", help="where vocab.txt and tokenizer_config.json go (default data/vocab; "
                                        "required with --extend)")
    p.add_argument("--do_lower_case", action="store_true", default=None,
                   help="lower-case Latin letters (Hangul is never decomposed); default cased")
    p.add_argument("--num_processes", type=int, help="processes for mecab splitting (WordPiece training is multi-threaded already)")
    p.add_argument("--extend", metavar="VOCAB", help="a vocab.txt or vocab directory to extend instead of training one "
                                                     "(see docs/dataset.md, 'Extending a released vocab')")
    p.add_argument("--num_new", type=int, help="with --extend: how many domain pieces to write into [unusedN] slots")
    return p.parse_args(argv)


def extend(args):
    import logging

    from util.vocab_extension import extend_vocab

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    given = [f"--{k}" for k in BUILD_DEFAULTS if getattr(args, k) is not None]
    if given:
        raise UserInputError(f"{' '.join(given)}: not used with --extend (it trains a vocab)")
    if args.num_new is None or args.output_dir is None:
        raise UserInputError("--extend needs --num_new and --output_dir")
    check_dir_can_be_made(args.output_dir, "--output_dir")
    record = extend_vocab(args.extend, args.corpus, args.num_new, args.output_dir, args.tokenizer,
                          args.do_lower_case, args.min_frequency)
    if record["num_new"] < args.num_new:
        print(f"only {record['num_new']} of --num_new {args.num_new} candidates qualify in {args.corpus}",
              file=sys.stderr)
    per = record["tokens_per_sentence"]
    print(f"{record['num_new']} new tokens into {args.output_dir}; tokens per sentence on {per['sentences']} "
          f"sentences: {per['before']:.4f} -> {per['after']:.4f}", file=sys.stderr)
    print(json.dumps({k: v for k, v in record.items() if k != "new_tokens"}, ensure_ascii=False))


def main(argv=None):
    args = parse_args(argv)
    if args.extend is not None:
        return extend(args)
    if args.num_new is not None:
        raise UserInputError("--num_new applies only with --extend")
    for key, default in BUILD_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, default)
    args.output_dir = args.output_dir or "data/vocab"
    check_dir_can_be_made(args.output_dir, "--output_dir")  # before training, not after it
    stats = build_vocab(args.corpus, args.output_dir, args.tokenizer or "wordpiece", args.vocab_size,
                        args.min_frequency, args.limit_alphabet, args.unused_size, bool(args.do_lower_case),
                        args.num_processes)
    print(json.dumps(stats, ensure_ascii=False))
    note = shortfall_note(stats, args.min_frequency)
    if note:
        print(note, file=sys.stderr)


if __name__ == "__main__":
    run_cli(main)
