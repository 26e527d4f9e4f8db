"""build_vocab.py --extend: a domain's pieces into a released vocab's ``[unusedN]`` lines.

Every other line stays byte for byte where it was, so every old id is unchanged and the
vocab keeps its length: the extended vocab works with the same checkpoint, and warm start
initialises each new row from the rows of the pieces the old vocab split it into (the
``base_pieces`` in ``vocab_extension.json``).

What is a candidate, per tokenizer type (util/tokenization.py):

* ``wordpiece``: a word as the tokenizer's normaliser and pre-tokenizer cut it (whitespace
  and punctuation split, lower-cased when the vocab is). It goes in bare, without ``##``:
  WordPiece matches longest-first from the start of each word, so the bare form is what
  matches a whole word, and a candidate *is* a whole word. A ``##`` form would only match
  the tail of some longer word, which is a different candidate, so none is added.
* ``mecab_wordpiece``: a piece as util/mecab_wordpiece.py cuts it, an eojeol's first
  morpheme bare and later ones ``##``-marked (``##습니다``): the very string the tokenizer
  looks up. A piece the vocab lacks is spelled out in characters today.

Score: occurrences in the corpus x pieces saved, where pieces saved = tokens the old vocab
splits the candidate into - 1. Ties go to the more frequent, then to the first seen.
Not candidates: anything already in the vocab (it saves nothing), anything seen fewer
than ``min_frequency`` times, and anything whose old split holds ``[UNK]``. An unknown
word is a single ``[UNK]`` in WordPiece, so it saves no tokens; and in both types the
new row would start from ``[UNK]``'s vector, which says nothing about the word. What such
words need is their missing characters, which this does not add.

Then it checks the tokenizer itself on the extended vocab: every distinct word (eojeol for
mecab) of the corpus is tokenized before and after. WordPiece's greedy match also takes a
new word-initial token as the prefix of longer words, which can split them into more
pieces than before (``있다`` makes ``있다면서요`` ``있다 ##면서 ##요`` where it was ``있
##다면서요``) or leave a rest it cannot spell, which makes the word ``[UNK]``. So a new
token is dropped, and the next candidate takes its slot, when the extended tokenizer never
emits it, when it turns any word into ``[UNK]``, or when the words it now starts take as
many tokens in all as before; until none is. A rare word may thus get one piece more,
while the corpus as a whole gets fewer. Mecab pieces are looked up whole, so there they
only ever save.
"""
import collections
import contextlib
import logging
import os
import re
import tempfile

from util.errors import UserInputError
from util.files import atomic_write, make_dirs, write_json
from util.tokenization import (CONFIG_NAME, TOKENIZER_TYPES, VOCAB_NAME, KoTokenizer,
                               read_tokenizer_config, resolve_vocab_path, tokenizer_config)
from util.vocab_builder import check_corpus, corpus_lines

RECORD_NAME = "vocab_extension.json"
UNUSED_RE = re.compile(r"\[unused\d+\]")
TOKENIZE_BATCH = 10000

log = logging.getLogger(__name__)

Candidate = collections.namedtuple("Candidate", "token count pieces_saved base_pieces")


def resolve_settings(vocab, tokenizer_type=None, do_lower_case=None):
    """(vocab_file, directory, recorded config, tokenizer_type, do_lower_case).

    The vocab's tokenizer_config.json decides; a flag may repeat it but not contradict it.
    A bare vocab.txt takes the flags, else wordpiece, cased.
    """
    vocab_file, directory = resolve_vocab_path(vocab)
    config = read_tokenizer_config(directory)
    if not config:
        return vocab_file, directory, {}, tokenizer_type or "wordpiece", bool(do_lower_case)
    config_path = os.path.join(directory, CONFIG_NAME)
    recorded_type = config.get("tokenizer_type", "wordpiece")
    recorded_lower = bool(config.get("do_lower_case", False))
    if tokenizer_type is not None and tokenizer_type != recorded_type:
        raise UserInputError(f"--tokenizer {tokenizer_type} contradicts tokenizer_type {recorded_type!r} "
                             f"recorded in {config_path}; drop the flag")
    if do_lower_case is not None and bool(do_lower_case) != recorded_lower:
        raise UserInputError(f"--do_lower_case contradicts do_lower_case {str(recorded_lower).lower()} "
                             f"recorded in {config_path}; drop the flag")
    return vocab_file, directory, config, recorded_type, recorded_lower


def free_slots(tokens):
    """Ids of the ``[unusedN]`` lines, in file order."""
    return [i for i, token in enumerate(tokens) if UNUSED_RE.fullmatch(token)]


def count_units(tokenizer, lines):
    """(candidate counts, unit counts) over the corpus, both in order of first appearance.

    Units are what the tokenizer handles independently of each other (words for
    wordpiece, eojeols for mecab_wordpiece); candidates are what can go into the vocab.
    """
    candidates, units = collections.Counter(), collections.Counter()
    if tokenizer.tokenizer_type == "mecab_wordpiece":
        from util.mecab_wordpiece import MecabWordPiece

        mecab = MecabWordPiece(tokenizer.vocab, tokenizer.do_lower_case)
        for line in lines:
            candidates.update(mecab.text_pieces(line))
            units.update(line.split())  # the tokenizer lower-cases them itself
        return candidates, units
    normalizer, pre_tokenizer = tokenizer.backend.normalizer, tokenizer.backend.pre_tokenizer
    for line in lines:
        units.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(line)))
    return units, units


def old_split(tokenizer, candidates):
    """candidate -> the ids the vocab gives it now."""
    if tokenizer.tokenizer_type == "mecab_wordpiece":
        from util.mecab_wordpiece import piece_tokens

        return {c: tokenizer.convert_tokens_to_ids(piece_tokens(c, tokenizer.vocab)) for c in candidates}
    # A normalised, pre-tokenized word comes out of the normaliser and pre-tokenizer unchanged.
    return dict(zip(candidates, _encode(tokenizer, list(candidates))))


def rank_candidates(tokenizer, counts, min_frequency):
    """Candidates by count x pieces saved, best first (see the module docstring)."""
    splits = old_split(tokenizer, counts)
    ranked = []
    for token, count in counts.items():
        ids = splits[token]
        if (count < min_frequency or len(ids) < 2 or token in tokenizer.vocab or tokenizer.unk_id in ids
                or any(c.isspace() for c in token)):
            continue
        ranked.append(Candidate(token, count, len(ids) - 1, ids))
    ranked.sort(key=lambda c: (-c.count * c.pieces_saved, -c.count))  # stable: first seen wins ties
    return ranked


def _encode(tokenizer, texts):
    ids = []
    for start in range(0, len(texts), TOKENIZE_BATCH):
        ids.extend(tokenizer.encode_batch(texts[start:start + TOKENIZE_BATCH]))
    return ids


@contextlib.contextmanager
def _quiet_vocab_warnings():
    # The base vocab's repeated lines were reported when it was read; every trial vocab
    # repeats them, and saying so again per trial would bury the result.
    logger = logging.getLogger("util.vocab_file")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def replace_lines(raw, replacements):
    """vocab.txt bytes with lines ``{id: token}`` replaced and every other byte kept
    (line endings, a missing final newline)."""
    lines = raw.decode("utf-8").split("\n")
    for i, token in replacements.items():
        lines[i] = token + ("\r" if lines[i].endswith("\r") else "")
    return "\n".join(lines).encode("utf-8")


def choose(base, ranked, slots, num_new, units, workdir):
    """The first ``num_new`` candidates that the extended tokenizer emits, that turn no corpus
    unit into [UNK] and that save tokens over the corpus as a whole; returns (chosen, extended
    tokenizer, extended vocab bytes).

    A WordPiece word holds at most one new token, its first (new tokens are bare), so what
    the word saves is that token's doing; a mecab eojeol can hold several.
    """
    unit_list = list(units)
    before = _encode(base, unit_list)
    rejected = set()
    while True:
        chosen = [c for c in ranked if c.token not in rejected][:num_new]
        new_ids = {slots[i]: c.token for i, c in enumerate(chosen)}
        by_id = dict(zip(slots, chosen))
        raw = replace_lines(base.vocab_bytes, new_ids)
        path = os.path.join(workdir, VOCAB_NAME)
        with open(path, "wb") as f:
            f.write(raw)
        with _quiet_vocab_warnings():
            extended = KoTokenizer(path, base.tokenizer_type, base.do_lower_case)
        saved, harmful = collections.Counter(), set()
        for unit, old, new in zip(unit_list, before, _encode(extended, unit_list)):
            if base.unk_id in new and base.unk_id not in old:
                # Only WordPiece does this, and the word is then [UNK] whole, the new token
                # gone with it: the culprit is the longest new token the word starts with,
                # the one the greedy match took.
                prefixes = [i for i, token in new_ids.items() if unit.startswith(token)]
                harmful.update(sorted(prefixes, key=lambda i: len(new_ids[i]))[-1:])
                continue
            hits = [i for i in new if i in new_ids]
            if not hits:
                continue
            if len(hits) == 1:
                saved[hits[0]] += units[unit] * (len(old) - len(new))
            else:  # only mecab: pieces are looked up whole, so each saves exactly its own
                for i in hits:
                    saved[i] += units[unit] * by_id[i].pieces_saved
        dropped = {new_ids[i] for i in new_ids if i in harmful or saved[i] <= 0}
        if not dropped:
            if rejected:
                log.info("dropped %d candidates that the extended tokenizer would not emit, or that would "
                         "save no tokens on the corpus or make a word [UNK]: %s",
                         len(rejected), " ".join(sorted(rejected)[:20]))
            return chosen, extended, raw
        rejected |= dropped


def tokens_per_sentence(tokenizer, lines):
    ids = _encode(tokenizer, lines)
    return sum(map(len, ids)) / len(lines), ids


def extend_vocab(vocab, corpus, num_new, output_dir, tokenizer_type=None, do_lower_case=None, min_frequency=3):
    """Write the extended vocab directory; return the record (vocab_extension.json)."""
    if tokenizer_type is not None and tokenizer_type not in TOKENIZER_TYPES:
        raise UserInputError(f"--tokenizer {tokenizer_type!r} is not one of {', '.join(TOKENIZER_TYPES)}")
    if num_new < 1:
        raise UserInputError(f"--num_new must be at least 1, got {num_new}")
    if min_frequency < 1:
        raise UserInputError(f"--min_frequency must be at least 1, got {min_frequency}")
    vocab_file, directory, config, tokenizer_type, do_lower_case = resolve_settings(
        vocab, tokenizer_type, do_lower_case)
    if os.path.abspath(output_dir) == os.path.abspath(directory):
        raise UserInputError(f"--output_dir {output_dir} holds the vocab being extended; give another directory")
    base = KoTokenizer(vocab_file, tokenizer_type, do_lower_case)
    slots = free_slots(base.inv_vocab)
    if num_new > len(slots):
        raise UserInputError(f"--num_new {num_new}: {vocab_file} has only {len(slots)} free [unusedN] slots")
    check_corpus(corpus)

    lines = [line for _, line in corpus_lines(corpus)]
    counts, units = count_units(base, lines)
    ranked = rank_candidates(base, counts, min_frequency)
    if not ranked:
        raise UserInputError(f"{corpus}: no word the vocab splits into several pieces is seen "
                             f"--min_frequency {min_frequency} times or more")
    with tempfile.TemporaryDirectory() as workdir:
        chosen, extended, raw = choose(base, ranked, slots, num_new, units, workdir)
        before, _ = tokens_per_sentence(base, lines)
        after, ids = tokens_per_sentence(extended, lines)
    emitted = {i for seq in ids for i in seq}
    missing = [c.token for i, c in zip(slots, chosen) if i not in emitted]
    if missing:  # choose() checked every unit; the whole corpus must agree
        raise RuntimeError(f"new tokens not emitted on the corpus: {missing[:5]}")

    record = {
        "base_vocab": os.path.abspath(vocab_file),
        "base_vocab_sha256": base.vocab_sha256,
        "base_vocab_size": base.vocab_size,
        "tokenizer_type": tokenizer_type,
        "do_lower_case": do_lower_case,
        "corpus": os.path.abspath(corpus),
        "num_new": len(chosen),
        "new_tokens": [{"id": i, "token": c.token, "replaced": base.inv_vocab[i], "base_pieces": c.base_pieces,
                        "count": c.count, "pieces_saved": c.pieces_saved} for i, c in zip(slots, chosen)],
        "tokens_per_sentence": {"before": round(before, 4), "after": round(after, 4), "sentences": len(lines)},
    }
    new_config = dict(config, tokenizer_type=tokenizer_type, do_lower_case=do_lower_case) if config \
        else tokenizer_config(tokenizer_type, do_lower_case)
    write_extension(output_dir, raw, new_config, record)
    return record


def write_extension(output_dir, vocab_bytes, config, record):
    """As build_vocab does: a vocab.txt present means a complete directory, so the old one
    goes first and the new one is renamed into place last."""
    make_dirs(output_dir, "--output_dir")
    vocab_path = os.path.join(output_dir, VOCAB_NAME)
    if os.path.exists(vocab_path):
        os.remove(vocab_path)
    write_json(os.path.join(output_dir, CONFIG_NAME), config)
    write_json(os.path.join(output_dir, RECORD_NAME), record)
    with atomic_write(vocab_path, "wb") as f:
        f.write(vocab_bytes)
