"""Any single-sentence classification data of your own: intent, domain, topic, ...

Dialog-KoELECTRA ships ``conf/isac/electra-small.yaml`` (task ``isac_small_v1``) and reads
any task it does not know with its IntentProcessor: a headerless ``text<TAB>label`` file,
labels taken from the training file. This family reads that layout and more:

- ``.csv`` files are read with the csv module (quoted fields, commas); anything else as
  tab-separated with quoting off, like the other tasks' readers.
- ``text_column`` / ``label_column``: a header name or a 0-based index. ``auto`` takes the
  first header names found among the usual ones (``text``, ``sentence``, ``utterance``, ...
  and ``label``, ``intent``, ``domain``, ...), else columns 0 and 1 of a headerless file.
  A first row holding such names is a header and is skipped.
- ``label_list``: comma-separated labels, or a file of one label a line (relative to
  ``data_dir``), fixing the label ids; empty reads the distinct labels of ``train_file``
  (sorted, so ids repeat; the original's set order changed from run to run), or, with no
  training file, the ``id2label`` of a fine-tuned ``model_name_or_path``.

Accuracy selects the best checkpoint, as the original's ``isac`` metric; macro F1 is
reported beside it.
"""
import csv
import json
import os

from finetune import metrics
from finetune.tasks.base import register
from finetune.tasks.sequence_classification import Example, SequenceClassificationTask
from util.errors import UserInputError

TEXT_NAMES = ("text", "sentence", "utterance", "document", "query", "question", "comment", "q")
LABEL_NAMES = ("label", "intent", "domain", "class", "category", "labels", "target")


def read_rows(path):
    """``[(line_number, [fields])]`` of a TSV (quoting off) or, for ``.csv``, a CSV file."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            if path.lower().endswith(".csv"):
                reader = csv.reader(f)
                rows = [(reader.line_num, row) for row in reader]
            else:
                rows = [(i, line.rstrip("\r\n").split("\t")) for i, line in enumerate(f, 1)]
    except UnicodeDecodeError as e:
        raise UserInputError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    except csv.Error as e:
        raise UserInputError(f"{path}: malformed CSV ({e})") from None
    return [(n, [c.strip() for c in row]) for n, row in rows if any(c.strip() for c in row)]


def _find(header, names):
    lowered = [h.lstrip("\ufeff").lower() for h in header]
    return next((lowered.index(n) for n in names if n in lowered), None)


@register("sentence-classification", "isac", "intent", "domain", "text-classification")
class SentenceClassification(SequenceClassificationTask):
    primary_metric = "accuracy"
    config_defaults = {"text_column": "auto", "label_column": "auto", "label_list": ""}

    def __init__(self, config):
        super().__init__(config)
        self._labels = None

    def _where(self, key):
        return self.config.where(key) if hasattr(self.config, "where") else key

    # -- columns -------------------------------------------------------------------------
    def _columns(self, path, rows):
        """(text index, label index, rows without the header)."""
        first = rows[0][1]
        header_text, header_label = _find(first, TEXT_NAMES), _find(first, LABEL_NAMES)
        is_header = header_text is not None and header_label is not None
        indices = []
        for key, found, default in (("text_column", header_text, 0), ("label_column", header_label, 1)):
            value = str(getattr(self.config, key, None) or "auto").strip()
            if value.lower() == "auto":
                indices.append(found if is_header else default)
            elif value.isdigit():
                indices.append(int(value))
            else:
                names = [h.lstrip("\ufeff") for h in first]
                if value not in names:
                    raise UserInputError(f"{path}:{rows[0][0]}: {key} {value!r} is not a column of the header "
                                         f"({' | '.join(names)}) ({self._where(key)})")
                indices.append(names.index(value))
                is_header = True
        return indices[0], indices[1], rows[1:] if is_header else rows

    def _rows(self, path):
        rows = read_rows(path)
        if not rows:
            raise UserInputError(f"{path}: empty file (expected text and label columns)")
        text, label, rows = self._columns(path, rows)
        needed = max(text, label) + 1
        for line_no, fields in rows:
            if len(fields) < needed:
                raise UserInputError(f"{path}:{line_no}: expected at least {needed} fields "
                                     f"(text in column {text}, label in column {label}), got {len(fields)}")
            yield line_no, fields[text], fields[label]

    # -- labels --------------------------------------------------------------------------
    def labels(self):
        if self._labels is None:
            self._labels = self._read_labels()
        return list(self._labels)

    @property
    def label_list(self):
        return tuple(self.labels())

    def _read_labels(self):
        given = str(getattr(self.config, "label_list", None) or "").strip()
        if given:
            data_dir = getattr(self.config, "data_dir", None) or "."
            path = given if os.path.isabs(given) else os.path.join(data_dir, given)
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    labels = [line.strip() for line in f if line.strip()]
            else:
                labels = [label.strip() for label in given.split(",") if label.strip()]
            if len(set(labels)) != len(labels) or len(labels) < 2:
                raise UserInputError(f"{self._where('label_list')}: label_list needs two or more distinct labels")
            return labels
        train = getattr(self.config, "train_file", None)
        if train and os.path.isfile(train):
            return sorted({label for _, _, label in self._rows(train)})
        recorded = self._model_labels()
        if recorded:
            return recorded
        raise UserInputError(f"{self._where('label_list')}: set label_list or train_file: "
                             "the labels of a sentence-classification task come from one of them")

    def _model_labels(self):
        path = os.path.join(str(getattr(self.config, "model_name_or_path", None) or ""), "config.json")
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as f:
            id2label = json.load(f).get("id2label") or {}
        labels = [id2label[k] for k in sorted(id2label, key=int)]
        return labels if labels and not all(label.startswith("LABEL_") for label in labels) else None

    # -- examples ------------------------------------------------------------------------
    def read_examples(self, path, split):
        examples = []
        for line_no, text, label in self._rows(path):
            label = self.parse_label(label, path, line_no)
            examples.append(Example(f"{split}-{len(examples)}", text, None, label, line_no))
        if not examples:
            raise UserInputError(f"{path}: no examples")
        return examples

    def compute_metrics(self, predictions, examples):
        scores = metrics.macro_f1(self.gold(examples), predictions, label_ids=self.labels())
        return {"accuracy": scores.pop("accuracy"), **scores}
