"""The NER files the ``naver-ner`` and ``klue-ner`` task families read, as NerExamples.

Three layouts: KoELECTRA's Naver NER tsv ('words<TAB>tags', one sentence a line), the 2018
challenge files ('index<TAB>word<TAB>TAG_B', blank line between sentences) and KLUE-NER's
('## guid<TAB>marked sentence', then 'char<TAB>tag' per character). ``sniff_format`` tells
them apart by the first non-blank line. Every bad line is a one-line error naming the file
and line.
"""
import dataclasses
import re

from util.errors import UserInputError

NAVER_TYPES = ["PER", "FLD", "AFW", "ORG", "LOC", "CVL", "DAT", "TIM", "NUM", "EVT", "ANM",
               "PLT", "MAT", "TRM"]
# KoELECTRA's get_labels order, so label ids match its checkpoints.
NAVER_LABELS = ["O"] + [f"{t}-{p}" for t in NAVER_TYPES for p in "BI"]
KLUE_TYPES = ["PS", "LC", "OG", "DT", "TI", "QT"]
KLUE_LABELS = ["O"] + [f"{p}-{t}" for t in KLUE_TYPES for p in "BI"]

FORMATS = ("naver", "naver-challenge", "klue")
LABELS_OF_FORMAT = {"naver": NAVER_LABELS, "naver-challenge": NAVER_LABELS, "klue": KLUE_LABELS}
_CHALLENGE_TAG = re.compile(r"^([A-Z]{3})_([BI])$")


@dataclasses.dataclass
class NerExample:
    guid: str
    words: list
    # One tag per unit: per word (word-level), or per non-space character (char-level).
    tags: list
    char_level: bool
    line: int
    # Units (words or characters) that survive truncation at max_seq_len; None = all.
    scored: int = None

    def unit_starts(self):
        """Index in ``tags`` of each word's first unit."""
        starts, n = [], 0
        for word in self.words:
            starts.append(n)
            n += len(word) if self.char_level else 1
        return starts

    def span_text(self, first, last):
        """The text of units ``first..last`` (inclusive), spaces kept between words."""
        if not self.char_level:
            return " ".join(self.words[first:last + 1])
        pieces, n = [], 0
        for word in self.words:
            lo, hi = max(first - n, 0), min(last + 1 - n, len(word))
            if lo < hi:
                pieces.append(word[lo:hi])
            n += len(word)
        return " ".join(pieces)


def sniff_format(path):
    """Guess a file's layout from its first non-blank line."""
    try:
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line.strip():
                    continue
                if line.startswith("##"):
                    return "klue"
                fields = line.split("\t")
                if len(fields) == 3 and fields[0].strip().isdigit():
                    return "naver-challenge"
                if len(fields) == 2:
                    return "naver"
                raise UserInputError(
                    f"{path}:{line_no}: not a known NER layout (expected 'words<TAB>tags', "
                    "'index<TAB>word<TAB>tag' or KLUE's '## ' headers and 'char<TAB>tag' lines)"
                )
    except FileNotFoundError:
        raise UserInputError(f"NER data file not found: {path}") from None
    except UnicodeDecodeError as e:
        raise UserInputError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    raise UserInputError(f"{path}: no examples")


def _check_tag(tag, labels, path, line_no):
    if tag not in labels:
        raise UserInputError(
            f"{path}:{line_no}: label {tag!r} is not in the label set ({' '.join(labels)})"
        )


def read_naver_tsv(path, split):
    """KoELECTRA's layout: 'word word ...<TAB>TAG TAG ...', one sentence a line."""
    examples = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != 2:
                raise UserInputError(f"{path}:{line_no}: expected 'words<TAB>tags', got {len(fields)} fields")
            words, tags = fields[0].split(), fields[1].split()
            if len(words) != len(tags):
                raise UserInputError(f"{path}:{line_no}: {len(words)} words but {len(tags)} tags")
            for tag in tags:
                _check_tag(tag, NAVER_LABELS, path, line_no)
            examples.append(NerExample(f"{split}-{len(examples)}", words, tags, False, line_no))
    return examples


def read_naver_challenge(path, split):
    """The 2018 challenge files: 'index<TAB>word<TAB>TAG_B' per word, '-' for outside,
    a blank line (or index 1) between sentences."""
    examples, words, tags, first_line = [], [], [], 0

    def flush():
        if words:
            examples.append(NerExample(f"{split}-{len(examples)}", list(words), list(tags), False, first_line))
            words.clear()
            tags.clear()

    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                flush()
                continue
            fields = line.split("\t")
            if len(fields) != 3 or not fields[0].strip().isdigit():
                raise UserInputError(f"{path}:{line_no}: expected 'index<TAB>word<TAB>tag'")
            index, word, tag = fields[0].strip(), fields[1], fields[2].strip()
            if index == "1":
                flush()
            if not words:
                first_line = line_no
            m = _CHALLENGE_TAG.match(tag)
            tag = "O" if tag in ("-", "O") else (f"{m[1]}-{m[2]}" if m else tag)
            _check_tag(tag, NAVER_LABELS, path, line_no)
            if not word.strip():
                raise UserInputError(f"{path}:{line_no}: empty word")
            words.append(word.strip())
            tags.append(tag)
    flush()
    return examples


def read_klue(path, split):
    """KLUE-NER: '## <guid><TAB><marked sentence>' then one 'char<TAB>tag' line per
    character, a blank line between sentences; spaces become word breaks."""
    examples = []
    state = {"guid": None, "chars": [], "tags": [], "line": 0}

    def flush():
        chars, tags = state["chars"], state["tags"]
        if chars:
            words, word_tags, current = [], [], []
            for c, t in zip(chars, tags):
                if c == " ":
                    if current:
                        words.append("".join(current))
                        current = []
                else:
                    current.append(c)
                    word_tags.append(t)
            if current:
                words.append("".join(current))
            if words:
                guid = state["guid"] or f"{split}-{len(examples)}"
                examples.append(NerExample(guid, words, word_tags, True, state["line"]))
        state.update(guid=None, chars=[], tags=[])

    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if line.startswith("##"):
                flush()
                state["guid"] = line[2:].split("\t")[0].strip() or None
                state["line"] = line_no
                continue
            if not line:
                flush()
                continue
            fields = line.split("\t")
            if len(fields) != 2 or len(fields[0]) != 1:
                raise UserInputError(f"{path}:{line_no}: expected 'character<TAB>tag'")
            _check_tag(fields[1], KLUE_LABELS, path, line_no)
            if not state["chars"] and state["guid"] is None:
                state["line"] = line_no
            # Other whitespace is a word break too; KLUE itself only has spaces.
            state["chars"].append(" " if fields[0].isspace() else fields[0])
            state["tags"].append(fields[1])
    flush()
    return examples


READERS = {"naver": read_naver_tsv, "naver-challenge": read_naver_challenge, "klue": read_klue}
