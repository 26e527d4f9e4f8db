"""Train a WordPiece vocabulary (plain or mecab-ko morpheme-aware) on a cleaned corpus.

    python3 build_vocab.py --corpus preprocessed_data.txt --tokenizer mecab_wordpiece \
        --vocab_size 40000 --min_frequency 3 --limit_alphabet 6000 --unused_size 500
"""
import argparse
import json

from util.errors import run_cli
from util.files import check_dir_can_be_made
from util.tokenization import TOKENIZER_TYPES
from util.vocab_builder import build_vocab


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True, help="raw or preprocessed text file")
    p.add_argument("--tokenizer", "--tokenizer_type", dest="tokenizer", default="wordpiece", choices=TOKENIZER_TYPES,
                   help="wordpiece, or mecab_wordpiece to split into mecab-ko morphemes first (default wordpiece)")
    p.add_argument("--vocab_size", type=int, default=40000, help="entries in vocab.txt, special and unused included (default 40000)")
    p.add_argument("--min_frequency", type=int, default=3, help="minimum count for a merge (default 3)")
    p.add_argument("--limit_alphabet", type=int, default=6000, help="initial characters kept before merges (default 6000)")
    p.add_argument("--unused_size", type=int, default=500, help="[unusedN] tokens after the special tokens (default 500)")
    p.add_argument("--output_dir", default="data/vocab", help="where vocab.txt and tokenizer_config.json go (default data/vocab)")
    p.add_argument("--do_lower_case", action="store_true", help="lower-case Latin letters (Hangul is never decomposed); default cased")
    p.add_argument("--num_processes", type=int, default=1, help="processes for mecab splitting (WordPiece training is multi-threaded already)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    check_dir_can_be_made(args.output_dir, "--output_dir")  # before training, not after it
    stats = build_vocab(args.corpus, args.output_dir, args.tokenizer, args.vocab_size, args.min_frequency,
                        args.limit_alphabet, args.unused_size, args.do_lower_case, args.num_processes)
    print(json.dumps(stats, ensure_ascii=False))


if __name__ == "__main__":
    run_cli(main)
