"""What every single-sentence or sentence-pair task shares: TSV reading, features, head, outputs.

A family module only says which columns hold the texts and the label, the label set and
the metric. Files are read with quoting off (a tab is the only separator; a ``"`` is text),
as KoELECTRA's processors read them, so NSMC's pandas-escaped documents stay byte-exact.
"""
import dataclasses

import numpy as np

from finetune import metrics
from finetune.tasks.base import Task
from finetune.text import prepare_texts
from util.errors import UserInputError


@dataclasses.dataclass
class Example:
    guid: str
    text_a: str
    text_b: object  # str or None
    label: object  # str for classification, float for regression
    line: int  # 1-based line in the source file, for messages


def read_tsv(path, required_columns):
    """Yield ``(line_number, {column: value})`` for each data row of a headed TSV file.

    The header names the columns, so their order does not matter; a missing column, a row
    with fewer fields than the header, or a non-UTF-8 line raises UserInputError.
    """
    with open(path, "rb") as f:
        raw_lines = f.read().split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    if not raw_lines:
        raise UserInputError(f"{path}: empty file (expected a header with {', '.join(required_columns)})")

    def decode(line_no, raw):
        try:
            return raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as e:
            raise UserInputError(f"{path}:{line_no}: not UTF-8 ({e.reason} at byte {e.start})") from None

    header = decode(1, raw_lines[0]).lstrip("\ufeff").split("\t")
    missing = [c for c in required_columns if c not in header]
    if missing:
        raise UserInputError(
            f"{path}:1: header lacks column(s) {', '.join(missing)} (header: {' | '.join(header)})"
        )
    index = {c: header.index(c) for c in required_columns}
    needed = max(index.values()) + 1
    for line_no, raw in enumerate(raw_lines[1:], 2):
        line = decode(line_no, raw)
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < needed:
            raise UserInputError(
                f"{path}:{line_no}: expected {len(header)} tab-separated fields, got {len(fields)}"
            )
        yield line_no, {c: fields[i] for c, i in index.items()}


class SequenceClassificationTask(Task):
    """A classification (or, with ``kind = "regression"``, regression) head over [CLS]."""

    kind = "classification"
    primary_metric = "accuracy"
    label_list = ()
    # What the model calls each label, by its value in the data files (NSMC: "0" -> "negative"):
    # config.json's id2label, so predictions, pipelines and the model card say it. A family
    # without names keeps the values.
    label_names = {}
    # Column names in the canonical file: text_a, text_b (None for single sentences), label.
    columns = (None, None, None)
    skip_empty_pairs = False

    def labels(self):
        return list(self.label_list) if self.kind == "classification" else None

    # -- reading ---------------------------------------------------------------------------

    def parse_label(self, value, path, line_no):
        value = value.strip()
        if value not in self.label_list:
            raise UserInputError(
                f"{path}:{line_no}: label {value!r} is not one of {', '.join(self.label_list)}"
            )
        return value

    def read_examples(self, path, split):
        text_a_col, text_b_col, label_col = self.columns
        required = [c for c in (text_a_col, text_b_col, label_col) if c]
        examples = []
        for line_no, row in read_tsv(path, required):
            text_a = row[text_a_col].strip()
            text_b = row[text_b_col].strip() if text_b_col else None
            if self.skip_empty_pairs and (not text_a or (text_b_col and not text_b)):
                continue
            label = self.parse_label(row[label_col], path, line_no)
            examples.append(Example(f"{split}-{len(examples)}", text_a, text_b, label, line_no))
        if not examples:
            raise UserInputError(f"{path}: no examples after the header")
        return examples

    # -- features --------------------------------------------------------------------------

    def label_id(self, label):
        if self.kind == "regression":
            return float(label)
        return self.label_list.index(label)

    def build_features(self, examples, tokenizer, max_seq_len, split):
        texts_a = prepare_texts([e.text_a for e in examples], self.config)
        has_pair = any(e.text_b is not None for e in examples)
        texts_b = prepare_texts([e.text_b or "" for e in examples], self.config) if has_pair else None
        encoded = tokenizer(texts_a, texts_b, truncation=True, max_length=max_seq_len)
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
        features = []
        for i, example in enumerate(examples):
            feature = {k: encoded[k][i] for k in keys}
            feature["labels"] = self.label_id(example.label)
            features.append(feature)
        return features

    # -- model -----------------------------------------------------------------------------

    def build_model(self, model_name_or_path, **config_kwargs):
        from transformers import AutoModelForSequenceClassification

        if self.kind == "regression":
            head = {"num_labels": 1, "problem_type": "regression"}
        else:
            labels = [self.label_names.get(label, label) for label in self.labels()]
            head = {
                "num_labels": len(labels),
                "id2label": dict(enumerate(labels)),
                "label2id": {label: i for i, label in enumerate(labels)},
                "problem_type": "single_label_classification",
            }
        head.update(config_kwargs)
        return AutoModelForSequenceClassification.from_pretrained(
            model_name_or_path, local_files_only=True, **head
        )

    # -- outputs ---------------------------------------------------------------------------

    def postprocess(self, outputs, features, examples):
        logits = np.asarray(outputs["logits"], dtype=np.float32)
        if self.kind == "regression":
            return [float(v) for v in logits.reshape(len(logits), -1)[:, 0]]
        return [self.label_list[i] for i in logits.argmax(axis=-1)]

    def gold(self, examples):
        return [e.label for e in examples]

    def compute_metrics(self, predictions, examples):
        return metrics.accuracy(self.gold(examples), predictions)

    def prediction_records(self, predictions, examples):
        records = []
        for example, prediction in zip(examples, predictions):
            record = {"guid": example.guid, "line": example.line, "text_a": example.text_a}
            if example.text_b is not None:
                record["text_b"] = example.text_b
            record.update({"label": example.label, "prediction": prediction})
            records.append(record)
        return records
