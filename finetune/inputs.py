"""The items a Predictor takes, checked and normalised where they enter: the API, predict.py, the server.

An item is a text (single-sentence classification, NER, KLUE-DP), a ``(text_a, text_b)`` pair
(pair classification, KorSTS) or a ``{"context", "question"}`` dict (KorQuAD). ``check_item``
gives the item as the model will read it, or raises ``BadInput`` with the reason:

- every text is ``util.text_normalization.normalize_text``'d: NFC (decomposed Hangul from
  macOS becomes syllables), without NUL, U+FFFD or invisible characters (ZWSP, the BOM, other
  Unicode Cc/Cf/Cs/Co/Cn), which the tokenizer would drop anyway; offsets in a prediction
  (entities, answers) index this text, which predict.py and the server echo back;
- a text that is empty after that (whitespace, or invisible characters only) is refused;
- the item's shape must be the model's: a pair model refuses a single text and the reverse.

``parse_line`` turns one line of predict.py's input into an item (TSV pairs, JSON for QA,
``--text_column``) before the same check.
"""
import json

from util.text_normalization import normalize_text


class BadInput(ValueError):
    """One item that cannot be predicted; the message says why."""


def _text(value, what="text"):
    if not isinstance(value, str):
        raise BadInput(f"{what} must be a string, got {type(value).__name__}")
    text = normalize_text(value)
    if not text.strip():
        raise BadInput(f"{what} is empty")
    return text


def check_item(item, info):
    """``item`` as the model reads it (normalised), or BadInput. ``info`` is a ModelInfo."""
    if info.kind == "span_extraction":
        if not isinstance(item, dict):
            raise BadInput(f'expected {{"context": ..., "question": ...}}, got {type(item).__name__}')
        checked = dict(item)
        for key in ("context", "question"):
            if not isinstance(item.get(key), str) or not normalize_text(item[key]).strip():
                raise BadInput(f"key {key!r} must be a non-empty string")
            checked[key] = normalize_text(item[key])
        return checked
    pair = info.pair_input if info.kind in ("classification", "regression") else False
    if isinstance(item, (tuple, list)):
        if pair is False:
            raise BadInput("this model reads one text, not a pair")
        if len(item) != 2:
            raise BadInput(f"expected a pair (text_a, text_b), got {len(item)} texts")
        # Pair sides are stripped, as the task readers strip them in training.
        return _text(item[0], "text_a").strip(), _text(item[1], "text_b").strip()
    if pair is True:
        raise BadInput("this model reads a pair (text_a, text_b); the second text is missing")
    return _text(item)


def parse_line(text, info, text_column=None):
    """The item to predict for one decoded input line (not yet checked), or BadInput.

    ``text_column`` (a 0-based field index) picks one TAB-separated field as the text."""
    if not normalize_text(text).strip():
        raise BadInput("empty line")  # whitespace, invisible characters (ZWSP, a BOM, NUL) or nothing
    if info.kind == "span_extraction":
        try:
            item = json.loads(text)
        except json.JSONDecodeError as e:
            raise BadInput(f"malformed JSON ({e.msg} at column {e.colno}); expected "
                           '{"context": ..., "question": ...}') from None
        if not isinstance(item, dict):
            raise BadInput(f"expected a JSON object with context and question, got {type(item).__name__}")
        return item
    fields = text.split("\t")
    if text_column is not None:
        if text_column >= len(fields):
            raise BadInput(f"no field {text_column + 1} (the line has {len(fields)} tab-separated field(s))")
        return fields[text_column]
    pair = info.pair_input if info.kind in ("classification", "regression") else False
    if pair is False or (pair is None and len(fields) == 1):
        return text
    if len(fields) != 2:
        raise BadInput(f"expected text_a<TAB>text_b, got {len(fields)} tab-separated field(s)")
    if not normalize_text(fields[0]).strip() or not normalize_text(fields[1]).strip():
        raise BadInput("empty side in text_a<TAB>text_b")
    return fields[0], fields[1]


def check_line(text, info, text_column=None):
    """``parse_line`` then ``check_item``: the item as the model reads it, or BadInput."""
    return check_item(parse_line(text, info, text_column), info)


def echo(item):
    """The input fields repeated in an output record, so results can be joined back."""
    if isinstance(item, tuple):
        return {"text_a": item[0], "text_b": item[1]}
    if isinstance(item, dict):
        return {k: item[k] for k in ("id", "question") if k in item}
    return {"text": item}
