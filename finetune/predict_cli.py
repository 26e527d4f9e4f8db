"""predict.py's command line: read unlabelled input as it arrives, predict in chunks, write JSON lines in order.

Input (``--input FILE`` or standard input, UTF-8), one item a line:
- single-sentence classification (NSMC, Korean Hate Speech's comment), NER and KLUE-DP: the text
  (``--text_column N|NAME`` reads one TAB-separated field: a number counts from 1, a name is
  looked up in the first line, a header);
- sentence-pair classification and KorSTS: ``text_a<TAB>text_b`` (Hate Speech trained with
  ``hate_speech_input: title+comment``: ``title<TAB>comment``);
- question answering: a JSON object ``{"context": ..., "question": ...}`` (an ``id`` is echoed).
A BOM opening the input is not text. Lines are read as they arrive: each chunk holds the
lines already waiting (up to CHUNK_LINES), so a line typed on standard input is answered at
once and a file is still predicted in large, length-sorted batches.

Output (``--output FILE``, or standard output for none or ``-``): one JSON object per input
line, in input order, each with its ``line`` number, flushed chunk by chunk. U+0085, U+2028
and U+2029 are escaped, so readers that split lines at them (Python's ``str.splitlines``,
JavaScript) still see one record a line. A line that cannot be predicted (empty or only
invisible characters, malformed TSV/JSON, not UTF-8) becomes ``{"line": N, "error": ...}`` and a
message naming the line on standard error; the other lines are still predicted, and the exit
status is 1 when any line failed. Every item goes through ``Predictor.check`` (finetune/inputs.py).
"""
import argparse
import contextlib
import json
import queue
import sys
import threading

from finetune.inputs import BadInput, echo, parse_line
from util.errors import UserInputError

CHUNK_LINES = 2048  # at most this many lines predicted at a time: bounds memory, keeps batches length-sorted
# Characters str.splitlines() breaks at that json.dumps(ensure_ascii=False) writes as they are.
LINE_BREAKS_KEPT_BY_JSON = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def json_line(record):
    """One JSON object on one line, whatever line-break characters its strings hold."""
    text = json.dumps(record, ensure_ascii=False)
    for char, escaped in LINE_BREAKS_KEPT_BY_JSON.items():
        if char in text:  # only inside strings: JSON syntax itself is ASCII
            text = text.replace(char, escaped)
    return text + "\n"


def _decode(raw):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadInput(f"not UTF-8 ({e.reason} at byte {e.start})") from None


def _strip_newline(raw):
    raw = raw[:-1] if raw.endswith(b"\n") else raw
    return raw[:-1] if raw.endswith(b"\r") else raw


def numbered_lines(stream):
    """(line number, raw bytes) for each line of a binary stream, as it arrives; a BOM opening
    the stream is dropped and a final newline adds no line."""
    for n, raw in enumerate(stream, 1):
        if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        yield n, _strip_newline(raw)


def arriving_chunks(lines, limit=CHUNK_LINES):
    """Lists of what ``lines`` has ready: block for one line, then take those already waiting.

    A thread reads ahead (at most a few chunks), so a slow source is answered line by line and
    a fast one fills whole chunks."""
    waiting = queue.Queue(maxsize=4 * limit)
    end = object()

    def read():
        try:
            for line in lines:
                waiting.put(line)
        except BaseException as e:  # raised again where the chunks are consumed
            waiting.put(e)
        waiting.put(end)

    threading.Thread(target=read, daemon=True, name="predict-input").start()
    while True:
        item = waiting.get()
        chunk = []
        while item is not end:
            if isinstance(item, BaseException):
                raise item
            chunk.append(item)
            if len(chunk) >= limit:
                break
            try:
                item = waiting.get_nowait()
            except queue.Empty:
                break
        if chunk:
            yield chunk
        if item is end:
            return


class TabNotice:
    """Warns once when a single-text model is fed lines with TABs (NSMC's file as it is)."""

    def __init__(self, predictor, text_column):
        info = predictor.info
        single = info.kind in ("token_classification", "dependency_parsing") or info.pair_input is False
        self.pending = single and text_column is None

    def see(self, text, where, warn):
        if self.pending and "\t" in text:
            self.pending = False
            warn(f"{where}: warning: the line holds {text.count(chr(9)) + 1} tab-separated fields, but this model "
                 "reads one text: each whole line is read as the text (--text_column N or NAME reads one field)")


def predict_chunks(predictor, chunks, source, progress=None, warn=None, text_column=None):
    """Yield one record per (line number, raw bytes), chunk by chunk, in order; ``warn(message)``
    hears every bad or cut line and the TAB notice."""
    warn = warn or (lambda message: print(message, file=sys.stderr))
    tabs = TabNotice(predictor, text_column)
    for chunk in chunks:
        records, items, slots = [], [], []
        for n, raw in chunk:
            try:
                text = _decode(raw)
                tabs.see(text, f"{source}:{n}", warn)
                item = predictor.check(parse_line(text, predictor.info, text_column))
            except BadInput as e:
                warn(f"{source}:{n}: error: {e}")
                records.append({"line": n, "error": str(e)})
                continue
            records.append({"line": n, **echo(item)})
            items.append(item)
            slots.append(len(records) - 1)
        for slot, prediction in zip(slots, predictor.predict(items)):
            if "warning" in prediction:
                warn(f"{source}:{records[slot]['line']}: warning: {prediction['warning']}")
            records[slot].update(prediction)
        if progress is not None:
            progress.update(len(records))
        yield records


def predict_lines(predictor, raw_lines, source, progress=None, warn=None, text_column=None):
    """Yield one record per raw line (bytes, numbered from 1), in order."""
    numbered = list(enumerate(raw_lines, 1))
    chunks = (numbered[i:i + CHUNK_LINES] for i in range(0, len(numbered), CHUNK_LINES))
    for records in predict_chunks(predictor, chunks, source, progress, warn, text_column):
        yield from records


def open_input(path):
    """(binary stream, name for messages) of --input, failing in one line before any model is loaded."""
    if path in (None, "-"):
        return sys.stdin.buffer, "<stdin>"
    try:
        return open(path, "rb"), path
    except FileNotFoundError:
        raise UserInputError(f"input file not found: {path}") from None
    except IsADirectoryError:
        raise UserInputError(f"{path}: is a directory, expected an input file") from None
    except OSError as e:
        raise UserInputError(f"{path}: cannot read ({e.strerror})") from None


def text_column_index(value, lines, source):
    """The 0-based field --text_column names (a number from 1, or a name found in the header
    line, which is then consumed), or None."""
    if value is None:
        return None
    if value.isdigit():
        if int(value) < 1:
            raise UserInputError(f"--text_column {value}: fields are numbered from 1")
        return int(value) - 1
    first = next(lines, None)
    if first is None:
        raise UserInputError(f"{source}: empty input, so no header line to find --text_column {value} in")
    try:
        header = _decode(first[1]).split("\t")
    except BadInput as e:
        raise UserInputError(f"{source}:1: header {e}") from None
    if value not in header:
        raise UserInputError(f"{source}:1: --text_column {value} is not in the header line ({' | '.join(header)})")
    return header.index(value)


def count_lines(path):
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Predict with a fine-tuned model on unlabelled text (JSON lines out).")
    p.add_argument("--model_dir", required=True, help="a fine-tuned directory: ckpt_dir/<task>/best_model or checkpoint-N")
    p.add_argument("--input", default=None, help="input file, or - for standard input (the default); one item a line")
    p.add_argument("--output", default=None, help="output file, or - for standard output (the default); JSON lines. "
                   "A regular file is written under a temporary name and renamed; a symlink's target is written; "
                   "a FIFO or device is written through")
    p.add_argument("--text_column", default=None,
                   help="for a single-text model: read this TAB-separated field of each line, by number (from 1) or "
                        "by name (the first line is then a header, e.g. --text_column document for NSMC's files)")
    p.add_argument("--onnx", default=None, help="run this ONNX file (python -m convert.onnx_export) instead of PyTorch")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N; with --onnx also an onnxruntime "
                   "execution provider's name (e.g. CUDAExecutionProvider)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: the runtime's default)")
    p.add_argument("--batch_size", type=int, default=32, help="items per batch, padded to the batch's longest")
    p.add_argument("--max_seq_len", type=int, default=None,
                   help="default: the max_seq_len the model was trained with; at most its position count")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on standard error (default: for input files of 1,000 lines or more)")
    args = p.parse_args(argv)
    for name in ("threads", "batch_size", "max_seq_len"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            p.error(f"--{name} must be positive, got {value}")
    return args


def main(argv=None):
    """Returns the exit status: 0, or 1 when some input lines could not be predicted."""
    import logging
    import os

    os.environ.setdefault("USE_TF", "0")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # no TensorFlow INFO lines should it get imported
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from finetune.inference import Predictor

    stream, source = open_input(args.input)
    with contextlib.ExitStack() as stack:
        if stream is not sys.stdin.buffer:
            stack.enter_context(stream)
        predictor = Predictor(args.model_dir, onnx_path=args.onnx, threads=args.threads, batch_size=args.batch_size,
                              max_seq_len=args.max_seq_len, device=args.device)
        lines = numbered_lines(stream)
        column = text_column_index(args.text_column, lines, source)
        # Counted ahead only in a regular file: a FIFO's lines would be read away.
        regular = source != "<stdin>" and os.path.isfile(args.input)
        total = count_lines(args.input) if regular and args.progress is not False else None
        show = args.progress if args.progress is not None else (total or 0) >= 1000
        out = stack.enter_context(_output(args.output))
        progress = None
        if show:
            from tqdm.auto import tqdm

            progress = stack.enter_context(tqdm(total=total, unit="line", file=sys.stderr, desc="predict",
                                                mininterval=1.0))
        failed = seen = 0
        for records in predict_chunks(predictor, arriving_chunks(lines), source, progress, text_column=column):
            for record in records:
                failed += "error" in record
                out.write(json_line(record))
            seen += len(records)
            out.flush()
    if failed:
        print(f"error: {failed} of {seen} input line(s) could not be predicted (see the messages above)",
              file=sys.stderr)
        return 1
    return 0


@contextlib.contextmanager
def _output(path):
    """Standard output for none or ``-``, else util.files.atomic_write (which writes a symlink's
    target, and a FIFO or device through)."""
    if path in (None, "-"):
        yield sys.stdout
        return
    from util.files import atomic_write

    with atomic_write(path) as f:
        yield f
