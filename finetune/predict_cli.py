"""predict.py's command line: read unlabelled input, predict in chunks, write JSON lines in order.

Input (``--input FILE`` or standard input, UTF-8), one item a line:
- single-sentence classification (NSMC, Korean Hate Speech's comment), NER and KLUE-DP: the text;
- sentence-pair classification and KorSTS: ``text_a<TAB>text_b`` (Hate Speech trained with
  ``hate_speech_input: title+comment``: ``title<TAB>comment``);
- question answering: a JSON object ``{"context": ..., "question": ...}`` (an ``id`` is echoed).
Output (``--output FILE``, written under a temporary name and renamed, or standard output):
one JSON object per input line, in input order, each with its ``line`` number. A line that
cannot be predicted (empty, malformed TSV/JSON, not UTF-8) becomes ``{"line": N, "error": ...}``
and a message naming the line on standard error; the other lines are still predicted, and the
exit status is 1 when any line failed.
"""
import argparse
import contextlib
import json
import sys

from util.errors import UserInputError

CHUNK_LINES = 2048  # lines predicted at a time: bounds memory, keeps batches length-sorted


class BadLine(Exception):
    """One input line that cannot be predicted; the message says why."""


def parse_line(text, info):
    """The item to predict for one decoded input line, or BadLine."""
    if not text.strip():
        raise BadLine("empty line")
    if info.kind == "span_extraction":
        try:
            item = json.loads(text)
        except json.JSONDecodeError as e:
            raise BadLine(f"malformed JSON ({e.msg} at column {e.colno}); expected "
                          '{"context": ..., "question": ...}') from None
        if not isinstance(item, dict):
            raise BadLine(f"expected a JSON object with context and question, got {type(item).__name__}")
        for key in ("context", "question"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise BadLine(f"key {key!r} must be a non-empty string")
        return item
    if info.kind in ("token_classification", "dependency_parsing"):
        return text
    pair = info.pair_input
    if pair is False:
        return text
    fields = text.split("\t")
    if pair is None and len(fields) == 1:
        return text
    if len(fields) != 2:
        raise BadLine(f"expected text_a<TAB>text_b, got {len(fields)} tab-separated field(s)")
    if not fields[0].strip() or not fields[1].strip():
        raise BadLine("empty side in text_a<TAB>text_b")
    return fields[0].strip(), fields[1].strip()


def echo(item):
    """The input fields repeated in the output record, so results can be joined back."""
    if isinstance(item, tuple):
        return {"text_a": item[0], "text_b": item[1]}
    if isinstance(item, dict):
        return {k: item[k] for k in ("id", "question") if k in item}
    return {"text": item}


def read_input(path):
    """Raw lines (bytes) of a file or of standard input; a final newline adds no line."""
    if path in (None, "-"):
        data = sys.stdin.buffer.read()
    else:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise UserInputError(f"input file not found: {path}") from None
        except IsADirectoryError:
            raise UserInputError(f"{path}: is a directory, expected an input file") from None
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def predict_lines(predictor, raw_lines, source, progress=None, warn=None):
    """Yield one record per raw line, in order; ``warn(message)`` hears every bad or cut line."""
    warn = warn or (lambda message: print(message, file=sys.stderr))
    for begin in range(0, len(raw_lines), CHUNK_LINES):
        records, items, slots = [], [], []
        for n, raw in enumerate(raw_lines[begin:begin + CHUNK_LINES], begin + 1):
            try:
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise BadLine(f"not UTF-8 ({e.reason} at byte {e.start})") from None
                item = parse_line(text, predictor.info)
            except BadLine as e:
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
        yield from records


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Predict with a fine-tuned model on unlabelled text (JSON lines out).")
    p.add_argument("--model_dir", required=True, help="a fine-tuned directory: ckpt_dir/<task>/best_model or checkpoint-N")
    p.add_argument("--input", default=None, help="input file (default: standard input); one item a line")
    p.add_argument("--output", default=None, help="output file, or - for standard output (the default); JSON lines. "
                   "A regular file is written under a temporary name and renamed; a symlink's target is written; "
                   "a FIFO or device is written through")
    p.add_argument("--onnx", default=None, help="run this ONNX file (python -m convert.onnx_export) instead of PyTorch")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: the runtime's default)")
    p.add_argument("--batch_size", type=int, default=32, help="items per batch, padded to the batch's longest")
    p.add_argument("--max_seq_len", type=int, default=None, help="default: the max_seq_len the model was trained with")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on standard error (default: for inputs of 1,000 lines or more)")
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
    from tqdm.auto import tqdm

    from finetune.inference import Predictor
    from util.files import atomic_write

    predictor = Predictor(args.model_dir, onnx_path=args.onnx, threads=args.threads,
                          batch_size=args.batch_size, max_seq_len=args.max_seq_len)
    raw_lines = read_input(args.input)
    source = args.input if args.input not in (None, "-") else "<stdin>"
    show = args.progress if args.progress is not None else len(raw_lines) >= 1000
    failed = 0
    with contextlib.ExitStack() as stack:
        to_file = args.output not in (None, "-")
        out = stack.enter_context(atomic_write(args.output)) if to_file else sys.stdout
        progress = stack.enter_context(tqdm(total=len(raw_lines), unit="line", file=sys.stderr,
                                            desc="predict", disable=not show, mininterval=1.0))
        for record in predict_lines(predictor, raw_lines, source, progress):
            failed += "error" in record
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    if failed:
        print(f"error: {failed} of {len(raw_lines)} input line(s) could not be predicted (see the messages above)",
              file=sys.stderr)
        return 1
    return 0
