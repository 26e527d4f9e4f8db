"""Clean a directory of raw Korean text into one sentence-per-line file.

    python3 preprocess.py --corpus_dir raw_data_dir --output_file preprocessed_data.txt
"""
import argparse
import json
import sys

from util.corpus_readers import DEFAULT_JSON_KEYS, ReadOptions
from util.disk_space import reporting_full_disk
from util.errors import run_cli
from util.preprocessing import preprocess_corpus

MAX_WARNINGS_SHOWN = 20


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus_dir", required=True, help="directory of raw files (.txt, .json/.jsonl, .csv/.tsv), searched recursively")
    p.add_argument("--output_file", required=True, help="the cleaned text file to write")
    p.add_argument("--num_processes", type=int, default=1, help="worker processes for cleaning and sentence splitting (default 1)")
    p.add_argument("--json_keys", default=",".join(DEFAULT_JSON_KEYS),
                   help="comma-separated JSON keys whose strings are text (default: %(default)s)")
    p.add_argument("--text_columns", default="",
                   help="comma-separated CSV/TSV header names holding text (default: the usual names such as document, text, Q, A)")
    p.add_argument("--no_blanks_separate_docs", dest="blanks_separate_docs", action="store_false",
                   help="in text files, do not treat blank lines as document boundaries")
    p.add_argument("--one_doc_per_line", action="store_true",
                   help="in text files, every line is a document (reviews, comments, utterances one a line)")
    p.add_argument("--keep_duplicates", action="store_true", help="keep repeated sentences (default: drop them)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    options = ReadOptions(
        json_keys=tuple(k for k in args.json_keys.split(",") if k),
        text_columns=tuple(c for c in args.text_columns.split(",") if c),
        blanks_separate_docs=args.blanks_separate_docs,
        one_doc_per_line=args.one_doc_per_line,
    )
    with reporting_full_disk(args.output_file, "--output_file"):  # atomic_write leaves no partial file
        stats = preprocess_corpus(args.corpus_dir, args.output_file, args.num_processes, options,
                                  dedup=not args.keep_duplicates, show_progress=not args.quiet)
    warnings = stats.pop("warnings")
    for w in warnings[:MAX_WARNINGS_SHOWN]:
        print(f"warning: {w}", file=sys.stderr)
    if len(warnings) > MAX_WARNINGS_SHOWN:
        print(f"warning: ... and {len(warnings) - MAX_WARNINGS_SHOWN} more", file=sys.stderr)
    print(json.dumps(stats, ensure_ascii=False))
    print(f"wrote {stats['sentences_out']} sentences in {stats['documents']} documents to {args.output_file}",
          file=sys.stderr)


if __name__ == "__main__":
    run_cli(main)
