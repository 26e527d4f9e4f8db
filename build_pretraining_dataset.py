"""Writes cleaned Korean text out as TFRecords that ELECTRA can be pre-trained on.

    python build_pretraining_dataset.py --corpus_dir data/clean --vocab_file data/vocab \
        --output_dir data/pretrain_tfrecords --max_seq_length 128 --num_processes 8

See docs/dataset.md for every argument and the stats.json it writes.
"""
import argparse
import os

from util.errors import run_cli
from util.tokenization import TOKENIZER_TYPES


def str2bool(value):
    lowered = str(value).lower()
    if lowered in ("true", "1", "yes", "y"):
        return True
    if lowered in ("false", "0", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def parse_args(argv=None):
    from pretrain.dataset_builder import DatasetOptions

    defaults = DatasetOptions(corpus_dir="", vocab_file="", output_dir="")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus_dir", "--corpus-dir", required=True,
                        help="directory of text files: a sentence a line, blank lines between documents")
    parser.add_argument("--vocab_file", "--vocab-file", required=True,
                        help="vocab directory (vocab.txt + tokenizer_config.json) or a vocab.txt")
    parser.add_argument("--output_dir", "--output-dir", required=True,
                        help="where the pretrain_data.tfrecord-* shards and stats.json go")
    parser.add_argument("--max_seq_length", "--max-seq-length", type=int, default=defaults.max_seq_length,
                        help="tokens per example, [CLS]/[SEP] included (default %(default)s)")
    parser.add_argument("--num_processes", "--num-processes", type=int, default=defaults.num_processes,
                        help="worker processes (default %(default)s)")
    parser.add_argument("--blanks-separate-docs", "--blanks_separate_docs", dest="blanks_separate_docs",
                        type=str2bool, nargs="?", const=True, default=defaults.blanks_separate_docs,
                        help="blank lines end a document (default true); takes an optional true/false")
    parser.add_argument("--no-blanks-separate-docs", dest="blanks_separate_docs", action="store_false",
                        help="blank lines are ignored; a document ends only at the end of a file")
    parser.add_argument("--do-lower-case", "--do_lower_case", dest="do_lower_case", action="store_true",
                        default=None, help="lower-case the text (default: what the vocab recorded)")
    parser.add_argument("--no-lower-case", "--no_lower_case", dest="do_lower_case", action="store_false",
                        help="keep the case (default: what the vocab recorded)")
    parser.add_argument("--tokenizer_type", "--tokenizer-type", choices=TOKENIZER_TYPES, default=None,
                        help="default: what the vocab recorded (wordpiece when nothing is recorded)")
    parser.add_argument("--force_tokenizer_type", "--force-tokenizer-type", action="store_true",
                        help="use --tokenizer_type even where the vocab records another type")
    parser.add_argument("--num_out_files", "--num-out-files", type=int, default=defaults.num_out_files,
                        help="number of output shards (default %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="seed for the random segment splits and lengths (default %(default)s)")
    parser.add_argument("--chunk_mb", "--chunk-mb", type=float, default=defaults.chunk_bytes / (1 << 20),
                        help="MiB of text per work unit (default %(default)s); part of what fixes the output")
    parser.add_argument("--pack", action="store_true",
                        help="fill examples across document boundaries, a [SEP] between documents (RoBERTa's "
                             "FULL-SENTENCES); for short documents, whose examples are otherwise mostly padding. "
                             "Default: upstream's, an example never holds two documents")
    parser.add_argument("--no_progress", "--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's start-up banner is noise here
    from pretrain import data_quality
    from pretrain.dataset_builder import DatasetOptions, build_dataset

    args = parse_args()
    options = DatasetOptions(
        corpus_dir=args.corpus_dir, vocab_file=args.vocab_file, output_dir=args.output_dir,
        max_seq_length=args.max_seq_length, num_processes=args.num_processes,
        blanks_separate_docs=args.blanks_separate_docs, do_lower_case=args.do_lower_case,
        tokenizer_type=args.tokenizer_type,
        force_tokenizer_type=args.force_tokenizer_type, num_out_files=args.num_out_files, seed=args.seed,
        chunk_bytes=max(1, int(args.chunk_mb * (1 << 20))), progress=not args.no_progress, pack=args.pack)
    stats = build_dataset(options)
    print(f"wrote {stats['examples']} examples from {stats['documents']} documents "
          f"({stats['tokens']} tokens, UNK rate {stats['unk_rate']:.4%}, fill rate {stats['fill_rate']:.1%}) "
          f"to {options.output_dir}")
    for line in (data_quality.unk_line(stats), data_quality.fill_line(stats)):
        if line and line.startswith("warning: "):
            print(line)


if __name__ == "__main__":
    run_cli(main)
