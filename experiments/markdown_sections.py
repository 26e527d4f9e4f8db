"""A generated block inside a hand-written markdown file, between ``<!-- marker -->`` lines.

The experiments put their tables into docs/results.md this way, and replace only their own block
when they run again.
"""
import os

from util.files import atomic_write


def _section_span(text, marker):
    """(start, stop) of the ``<!-- marker -->`` ... ``<!-- /marker -->`` block, markers included, or None."""
    begin, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    start = text.find(begin)
    stop = text.find(end, start) if start >= 0 else -1
    return (start, stop + len(end)) if stop >= 0 else None


def find_section(text, marker="task_table"):
    """The marked block of ``text`` (with a final newline), or None."""
    span = _section_span(text, marker)
    return text[span[0]:span[1]] + "\n" if span else None


def replace_section(text, section, marker="task_table"):
    """``text`` with its marked block replaced by ``section`` (a whole block), or with it appended."""
    span = _section_span(text, marker)
    if span:
        return text[:span[0]] + section + text[span[1]:].lstrip("\n")
    return text.rstrip() + ("\n\n" if text else "") + section


def put_section(path, body, marker="task_table"):
    """Replace (or append) the ``<!-- task_table -->`` section of a markdown file."""
    section = f"<!-- {marker} -->\n## All tasks, several seeds\n\n{body.rstrip()}\n<!-- /{marker} -->\n"
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    with atomic_write(path) as f:
        f.write(replace_section(text, section, marker))
