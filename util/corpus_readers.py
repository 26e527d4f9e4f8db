"""Readers that turn raw corpus files into documents (lists of paragraphs).

Formats, chosen by file extension:
- plain text (``.txt`` and anything not listed below): a line is a paragraph, a blank
  line ends a document (with ``one_doc_per_line``, every line is a document);
- ``.json``: NIKL / AIHub-style corpora: every string under one of ``json_keys`` (at
  any depth) is a paragraph; the elements of the outermost list of objects (NIKL's
  ``document``, AIHub's ``data``, or a top-level list) are the documents;
- ``.jsonl``: one JSON value a line, each one document, keys as for ``.json``;
- ``.csv`` / ``.tsv``: a header row, then one document a row made of the text columns
  (``text_columns``, or the first of the usual names found in the header).

Problems that spoil a line or a file are recorded in ``ReadStats`` with the file and
line, and reading goes on: one bad file in a large corpus should not stop the job.
"""
import csv
import json
import os
from dataclasses import dataclass, field

DEFAULT_JSON_KEYS = ("form", "question", "answer", "text", "utterance", "sentence")
DEFAULT_TEXT_COLUMNS = ("document", "text", "sentence", "comment", "comments", "Q", "A",
                        "question", "answer", "utterance", "form")
_BINARY_PROBE = 8192
MAX_WARNINGS_KEPT = 1000


@dataclass
class ReadOptions:
    json_keys: tuple = DEFAULT_JSON_KEYS
    text_columns: tuple = ()  # empty: pick from DEFAULT_TEXT_COLUMNS per file
    blanks_separate_docs: bool = True
    # Text files with one review, comment or utterance a line: each line its own document, so
    # a file of tens of thousands of them is not one document that one worker splits alone.
    one_doc_per_line: bool = False


@dataclass
class ReadStats:
    files: int = 0
    files_skipped: int = 0
    lines: int = 0
    lines_skipped: int = 0
    warnings: list = field(default_factory=list)

    def warn(self, message):
        if len(self.warnings) < MAX_WARNINGS_KEPT:
            self.warnings.append(message)

    def merge(self, other):
        self.files += other.files
        self.files_skipped += other.files_skipped
        self.lines += other.lines
        self.lines_skipped += other.lines_skipped
        for w in other.warnings:
            self.warn(w)


def file_format(path):
    name = path.lower()
    for ext in (".jsonl", ".json", ".csv", ".tsv"):
        if name.endswith(ext):
            return ext[1:]
    return "text"


def _looks_binary(path):
    with open(path, "rb") as f:
        return b"\x00" in f.read(_BINARY_PROBE)


def _decoded_lines(path, stats):
    """UTF-8 lines of a file (BOM dropped); an undecodable line is skipped with a warning."""
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, 1):
            stats.lines += 1
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                stats.lines_skipped += 1
                stats.warn(f"{path}:{line_no}: not UTF-8 (byte {e.start}), line skipped")
                continue
            if line_no == 1:
                line = line.lstrip("\ufeff")
            yield line_no, line.rstrip("\r\n")


def _read_text(path, options, stats):
    paragraphs = []
    for _, line in _decoded_lines(path, stats):
        if options.one_doc_per_line:
            if line.strip():
                yield [line]
            continue
        if line.strip():
            paragraphs.append(line)
        elif paragraphs and options.blanks_separate_docs:
            yield paragraphs
            paragraphs = []
    if paragraphs:
        yield paragraphs


def _strings_under_keys(obj, keys, out):
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in keys and isinstance(value, str):
                out.append(value)
            else:
                _strings_under_keys(value, keys, out)
    elif isinstance(obj, list):
        for item in obj:
            _strings_under_keys(item, keys, out)
    return out


def _document_units(obj):
    """The parts of a JSON corpus that are documents: the outermost list of objects."""
    if isinstance(obj, list):
        return obj
    if isinstance(obj, dict):
        for value in obj.values():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                return value
    return [obj]


def _read_json(path, options, stats):
    text = "\n".join(line for _, line in _decoded_lines(path, stats))
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        stats.files_skipped += 1
        stats.warn(f"{path}:{e.lineno}: malformed JSON ({e.msg}), file skipped")
        return
    keys = set(options.json_keys)
    found_any = False
    for unit in _document_units(obj):
        paragraphs = [p for p in _strings_under_keys(unit, keys, []) if p.strip()]
        if paragraphs:
            found_any = True
            yield paragraphs
    if not found_any:
        stats.files_skipped += 1
        stats.warn(f"{path}: no strings under the keys {', '.join(sorted(keys))}; "
                   "name the keys holding text with --json_keys; file skipped")


def _read_jsonl(path, options, stats):
    keys = set(options.json_keys)
    for line_no, line in _decoded_lines(path, stats):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            stats.lines_skipped += 1
            stats.warn(f"{path}:{line_no}: malformed JSON ({e.msg}), line skipped")
            continue
        paragraphs = [obj] if isinstance(obj, str) else _strings_under_keys(obj, keys, [])
        paragraphs = [p for p in paragraphs if p.strip()]
        if paragraphs:
            yield paragraphs


def _read_table(path, options, stats, delimiter):
    # csv.reader pulls lines itself, so quoted fields spanning lines stay whole;
    # reader.line_num then names the line a problem ends on.
    reader = csv.reader((line + "\n" for _, line in _decoded_lines(path, stats)), delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        return
    wanted = options.text_columns or [c for c in DEFAULT_TEXT_COLUMNS if c in header]
    missing = [c for c in wanted if c not in header]
    if not wanted or missing:
        stats.files_skipped += 1
        asked = ", ".join(missing) if missing else "any of " + ", ".join(DEFAULT_TEXT_COLUMNS)
        stats.warn(f"{path}:1: header {header} lacks text column(s) {asked}; "
                   "name them with --text_columns; file skipped")
        return
    columns = [header.index(c) for c in wanted]
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= max(columns):
                stats.lines_skipped += 1
                stats.warn(f"{path}:{reader.line_num}: {len(row)} columns, expected {len(header)}; line skipped")
                continue
            paragraphs = [row[i] for i in columns if row[i].strip()]
            if paragraphs:
                yield paragraphs
    except csv.Error as e:
        stats.warn(f"{path}:{reader.line_num}: {e}; rest of file skipped")


def iter_documents(path, options, stats):
    """Yield the documents of one file; problems go into ``stats``."""
    stats.files += 1
    if os.path.getsize(path) == 0:
        stats.files_skipped += 1
        stats.warn(f"{path}: empty file, skipped")
        return
    if _looks_binary(path):
        stats.files_skipped += 1
        stats.warn(f"{path}: binary file (NUL bytes), skipped")
        return
    fmt = file_format(path)
    if fmt == "json":
        yield from _read_json(path, options, stats)
    elif fmt == "jsonl":
        yield from _read_jsonl(path, options, stats)
    elif fmt in ("csv", "tsv"):
        yield from _read_table(path, options, stats, "," if fmt == "csv" else "\t")
    else:
        yield from _read_text(path, options, stats)
