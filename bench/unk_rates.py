"""UNK rate of a released vocab on real Korean text: what pretrain/data_quality.UNK_RATE_WARN is set against.

    .venv/bin/python -m bench.unk_rates --vocab_file PATH/vocab.txt

The vocab measured in docs/dataset.md ("UNK rate") is Dialog-KoELECTRA's released one
(pretrain/data/vocab/vocab.txt in SKplanet/Dialog-KoELECTRA, commit d3db9d7). Texts, from
../shared/data, every non-empty line (or cell) as it stands, not cleaned: unlabeled hate-speech
comments (part 5), the chatbot questions and answers, the NSMC test reviews, wikinews (boddari).
"""
import argparse
import csv
import os

SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "shared", "data")


def _lines(path):
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def _cells(path, columns, delimiter):
    with open(path, encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE)
        next(rows)  # the header
        return [row[c].strip() for row in rows for c in columns if len(row) > c and row[c].strip()]


def corpora():
    return {
        "hate-speech unlabeled comments": _lines(os.path.join(SHARED, "korean-hate-speech", "unlabeled",
                                                              "unlabeled_comments_5.txt")),
        "chatbot questions and answers": _cells(os.path.join(SHARED, "chatbot-data", "ChatbotData.csv"), (0, 1), ","),
        "NSMC test reviews": _cells(os.path.join(SHARED, "nsmc", "ratings_test.txt"), (1,), "\t"),
        "wikinews (boddari)": _lines(os.path.join(SHARED, "pretrain-text", "boddari", "boddari", "txt",
                                                  "wikinews.txt")),
    }


def unk_rate(tokenizer, texts, batch=4096):
    tokens = unknown = 0
    for start in range(0, len(texts), batch):
        for ids in tokenizer.encode_batch(texts[start:start + batch]):
            tokens += len(ids)
            unknown += ids.count(tokenizer.unk_id)
    return tokens, unknown


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab_file", required=True)
    args = parser.parse_args()
    from util.tokenization import KoTokenizer

    texts = corpora()
    print("| text | lines | wordpiece: tokens, UNK rate | mecab_wordpiece: tokens, UNK rate |")
    print("|---|---|---|---|")
    tokenizers = [KoTokenizer(args.vocab_file, kind, False) for kind in ("wordpiece", "mecab_wordpiece")]
    for name, lines in texts.items():
        cells = []
        for tokenizer in tokenizers:
            tokens, unknown = unk_rate(tokenizer, lines)
            cells.append(f"{tokens:,}, {unknown / tokens:.2%}")
        print(f"| {name} | {len(lines):,} | {cells[0]} | {cells[1]} |", flush=True)


if __name__ == "__main__":
    main()
