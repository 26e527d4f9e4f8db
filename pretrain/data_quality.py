"""What a pretraining dataset's stats.json says about its text, said before pretraining spends time on it.

Both the dataset builder (its summary) and pretraining (pretrain/prepare.py, either backend) print
these lines from the same stats, so a dataset built by an older version or on another machine is
judged the same way.

- ``UNK_RATE_WARN``: the released Dialog-KoELECTRA vocab (40,000 WordPieces) on real Korean text
  gives 0.10% [UNK] on chatbot questions and answers, 0.36% on NSMC reviews, 0.52% on web comments
  and 1.13% on wikinews (hanja and foreign names), 0.11-1.28% with its mecab tokenization
  (docs/dataset.md, "UNK rate"); a vocab built by build_vocab.py on the text itself gives ~0%.
  A vocab that does not fit the text gave 13.8% and 20.9%. 2% is above every fitting pairing
  measured and far below those.
- ``FILL_RATE_WARN``: under half the positions filled, more than half of every step's compute is
  padding; packing (``--pack``) then more than doubles the text each step sees (docs/dataset.md,
  "Packing short documents").
"""
UNK_RATE_WARN = 0.02
FILL_RATE_WARN = 0.5
UNK_TOP = 20  # the most frequent strings that became [UNK], kept in stats.json
UNK_SHOWN = 8  # of those, named in the warning line
# Distinct [UNK] strings kept per chunk of the corpus and over the whole build, so a corpus the
# vocab does not fit at all cannot grow the count without bound; the top ones are exact unless a
# string is frequent only across many chunks and rare in each.
UNK_KEPT_PER_CHUNK = 1000
UNK_KEPT = 10000

def top_unk_strings(counts, n):
    """The ``n`` most frequent of ``counts`` as a dict, most frequent first, ties by text (reproducible)."""
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n])


def unk_line(stats):
    """A warning when the UNK rate is above UNK_RATE_WARN, naming what became [UNK]; else None."""
    rate = stats.get("unk_rate")
    if rate is None or rate <= UNK_RATE_WARN:
        return None
    top = stats.get("unk_top")
    named = (", ".join(f"{text!r} {count:,}" for text, count in top[:UNK_SHOWN]) if top
             else "not recorded: rebuild the dataset to see them")
    return (f"warning: UNK rate {rate:.2%} ({round(rate * stats.get('tokens', 0)):,} of {stats.get('tokens', 0):,} "
            f"tokens), above the {UNK_RATE_WARN:.0%} a vocab that fits its text stays under: the vocab does not "
            f"fit this text. Most frequent [UNK]: {named}. Check the corpus is cleaned text (preprocess.py), or "
            "extend the vocab (build_vocab.py --extend) or build one on this text")


def fill_line(stats):
    """The fill rate, with a warning and the packing hint when it is under FILL_RATE_WARN; None if not recorded."""
    rate = stats.get("fill_rate")
    if rate is None:
        return None
    length = stats.get("max_seq_length")
    line = f"fill rate {rate:.1%}: real tokens fill that share of the {stats.get('examples', 0):,} x {length} positions"
    if rate >= FILL_RATE_WARN:
        return line
    packed = (stats.get("args") or {}).get("pack")
    hint = ("the documents are packed already: a shorter max_seq_length fits them better" if packed else
            "the documents are short, and upstream closes an example at the end of each. Rebuild with --pack "
            "to fill examples across document boundaries (docs/dataset.md, \"Packing short documents\")")
    return f"warning: {line}; the other {1 - rate:.0%} of the compute is padding: {hint}"


def warnings(stats):
    """The warning lines stats.json calls for (UNK rate, fill rate), for the start of pretraining."""
    lines = [unk_line(stats or {}), fill_line(stats or {})]
    return [line for line in lines if line and line.startswith("warning: ")]
