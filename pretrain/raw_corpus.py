"""The dataset builder reads cleaned text; a raw corpus file is refused with the commands that clean it.

``preprocess.py`` reads ``.json``/``.jsonl`` (NIKL, AIHub), ``.csv``/``.tsv`` (a header and text
columns) through util/corpus_readers.py, cleans the text and splits it into sentences. The dataset
builder does neither: given such a file it would pretrain on its keys, braces, header and label
column as they stand (the README's own command once did: 20.9% [UNK], and not a word said). It
refuses them rather than read them through the corpus readers, because reading is only half of
what preprocess.py does: the cleaning (text_cleaning.py) and sentence splitting would still be
missing, and two ways to turn a raw corpus into training text would drift apart.
"""
import dataclasses
import os
import shlex

from util.corpus_readers import file_format
from util.errors import UserInputError

# DatasetOptions field -> how build_pretraining_dataset.py spells it (None: the value alone decides).
FLAGS = {"corpus_dir": "--corpus_dir", "vocab_file": "--vocab_file", "output_dir": "--output_dir",
         "max_seq_length": "--max_seq_length", "num_processes": "--num_processes",
         "tokenizer_type": "--tokenizer_type", "num_out_files": "--num_out_files", "seed": "--seed"}


def builder_command(options, corpus_dir):
    """build_pretraining_dataset.py with ``options`` as given, reading ``corpus_dir``."""
    options = dataclasses.replace(options, corpus_dir=corpus_dir)
    defaults = type(options)(corpus_dir="", vocab_file="", output_dir="")
    words = ["python3", "build_pretraining_dataset.py"]
    for field in dataclasses.fields(options):
        value = getattr(options, field.name)
        if field.name in ("corpus_dir", "vocab_file", "output_dir", "max_seq_length") \
                or (value != getattr(defaults, field.name) and field.name in FLAGS):
            words += [FLAGS[field.name], str(value)]
    if not options.blanks_separate_docs:
        words.append("--no-blanks-separate-docs")
    if options.do_lower_case is not None:
        words.append("--do-lower-case" if options.do_lower_case else "--no-lower-case")
    if options.force_tokenizer_type:
        words.append("--force_tokenizer_type")
    if options.chunk_bytes != defaults.chunk_bytes:
        words += ["--chunk_mb", f"{options.chunk_bytes / (1 << 20):g}"]
    if options.pack:
        words.append("--pack")
    if not options.progress:
        words.append("--no_progress")
    return " ".join(shlex.quote(w) for w in words)


def refuse_raw_corpus(files, options):
    """One line naming the first .json/.jsonl/.csv/.tsv file among ``files`` and the two commands
    that clean the corpus directory and build from the result."""
    raw = [path for path in files if file_format(path) != "text"]
    if not raw:
        return
    # Beside the output dir, as the Makefile lays out a run: WORK/corpus, WORK/tfrecords.
    cleaned_dir = os.path.join(os.path.dirname(os.path.normpath(options.output_dir)), "corpus")
    inside = os.path.realpath(cleaned_dir) + os.sep
    if inside.startswith(os.path.realpath(options.corpus_dir) + os.sep):  # preprocess.py would read it next time
        cleaned_dir = os.path.normpath(options.corpus_dir) + "_cleaned"
    cleaned = os.path.join(cleaned_dir, "preprocessed.txt")
    others = ""
    if len(raw) > 1:
        others = (f" (and {len(raw) - 1} more: {', '.join(os.path.basename(p) for p in raw[1:4])}"
                  f"{', ...' if len(raw) > 4 else ''})")
    raise UserInputError(
        f"{raw[0]}: a raw .{file_format(raw[0])} corpus file{others}; the dataset builder reads cleaned text, a "
        "sentence a line, and would pretrain on its keys, header and columns as they stand. Clean the directory "
        f"first: `python3 preprocess.py --corpus_dir {shlex.quote(options.corpus_dir)} --output_file "
        f"{shlex.quote(cleaned)}`, then build from it: `{builder_command(options, cleaned_dir)}`")
