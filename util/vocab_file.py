"""Reading vocab.txt the way upstream BERT/ELECTRA, transformers and Rust tokenizers read it.

A token's id is its line number (0-based). A token written on two lines maps to the
later one, and the earlier id is simply never produced: the published Dialog-KoELECTRA
vocab has five such tokens (and no final newline), and its model has one embedding row
per line, so ``vocab_size`` is the line count, not the number of distinct tokens.
Numbering distinct tokens instead would shift every id after the first duplicate.

A vocab's identity (``sha256``, recorded in a dataset's stats.json and in vocab_extension.json)
is that of its tokens in order, not of the file's bytes: a CRLF copy or one without a final
newline gives the same ids, so it is the same vocab. The digest is the sha256 of the tokens,
each followed by ``\n``: for the usual file (LF, a final newline) that is the file's own
sha256, which is what those records held before, so they still match; ``matches`` also
accepts the byte sha256 of the very file, which older records of other files hold.
"""
import hashlib
import logging

from util.errors import UserInputError

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

log = logging.getLogger(__name__)


class VocabFile:
    """One vocab.txt: its lines (id -> token) and token -> id of the token's last line."""

    def __init__(self, path):
        self.path = path
        try:
            with open(path, "rb") as f:
                self.raw = f.read()
            text = self.raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UserInputError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
        # splitlines() would also split on U+2028 and friends; vocab files split on \n only.
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # the final newline, when there is one
        self.tokens = [line[:-1] if line.endswith("\r") else line for line in lines]
        self.ids = {}
        first_line = {}
        for line_no, token in enumerate(self.tokens, 1):
            if not token:
                raise UserInputError(f"{path}:{line_no}: empty line in vocab")
            if token in self.ids:
                log.warning("%s:%d: %r repeats line %d; it maps to line %d (id %d), as upstream "
                            "tokenizers read it", path, line_no, token, first_line[token], line_no,
                            line_no - 1)
            else:
                first_line[token] = line_no
            self.ids[token] = line_no - 1
        missing = [t for t in SPECIAL_TOKENS if t not in self.ids]
        if missing:
            raise UserInputError(f"{path}: vocab lacks special tokens {' '.join(missing)}")

    def __len__(self):
        return len(self.tokens)

    @property
    def duplicates(self):
        """token -> every 1-based line it is on, for tokens written more than once."""
        lines = {}
        for line_no, token in enumerate(self.tokens, 1):
            lines.setdefault(token, []).append(line_no)
        return {t: ls for t, ls in lines.items() if len(ls) > 1}

    @property
    def sha256(self):
        """The vocab's identity: its tokens in order, whatever the line endings."""
        return hashlib.sha256("".join(t + "\n" for t in self.tokens).encode("utf-8")).hexdigest()

    @property
    def file_sha256(self):
        return hashlib.sha256(self.raw).hexdigest()

    def matches(self, digest):
        """Whether a recorded vocab sha256 is this vocab's: by tokens, or (older records) by
        this file's bytes."""
        return digest in (self.sha256, self.file_sha256)


def load_vocab(vocab_file):
    """token -> id (its last line), as upstream's ``load_vocab``; warns once per repeated token."""
    return VocabFile(vocab_file).ids
