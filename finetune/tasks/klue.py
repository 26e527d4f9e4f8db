"""KLUE-NLI and KLUE-STS, reading the official release's JSON files (``klue-<task>-v1.1_<split>.json``).

Both are a JSON list of objects, as KLUE-baseline's processors read them:
- KLUE-NLI: ``guid``, ``premise``, ``hypothesis``, ``gold_label`` (entailment / contradiction /
  neutral); scored by accuracy.
- KLUE-STS: ``guid``, ``sentence1``, ``sentence2``, ``labels.real-label`` (a score in [0, 5]);
  a regression head scored by Pearson's r and by KLUE's F1 at 3.0 (finetune/klue_metrics.py).
An example's ``line`` is its 1-based position in the list.
"""
import json

from finetune import klue_metrics, metrics
from finetune.tasks.base import register
from finetune.tasks.korsts import similarity_score
from finetune.tasks.sequence_classification import Example, SequenceClassificationTask
from util.errors import UserInputError


def read_json_list(path):
    """The file's JSON list; a parse error or another JSON type names the file (and line)."""
    try:
        with open(path, encoding="utf-8") as f:
            items = json.load(f)
    except UnicodeDecodeError as e:
        raise UserInputError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise UserInputError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(items, list) or not items:
        raise UserInputError(f"{path}: expected a non-empty JSON list of examples (KLUE's release layout)")
    return items


def field(item, path, number, *keys):
    """``item[keys[0]][keys[1]]...``, or a one-line error naming the example."""
    value = item
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            guid = item.get("guid", "?") if isinstance(item, dict) else "?"
            raise UserInputError(f"{path}: example {number} (guid {guid}) has no {'.'.join(keys)!r}")
        value = value[key]
    return value


class KlueJsonTask(SequenceClassificationTask):
    """A sentence-pair task over a KLUE JSON list; subclasses name the fields."""

    text_keys = ()
    label_keys = ()

    def parse_label(self, value, path, number):
        if value.strip() not in self.label_list:
            raise UserInputError(f"{path}: example {number}: label {value.strip()!r} is not one of "
                                 f"{', '.join(self.label_list)}")
        return value.strip()

    def read_examples(self, path, split):
        examples = []
        for number, item in enumerate(read_json_list(path), 1):
            text_a, text_b = (str(field(item, path, number, key)).strip() for key in self.text_keys)
            label = self.parse_label(str(field(item, path, number, *self.label_keys)), path, number)
            guid = item.get("guid") or f"{split}-{len(examples)}"
            examples.append(Example(guid, text_a, text_b, label, number))
        return examples


@register("klue-nli")
class KlueNLI(KlueJsonTask):
    # KLUE-baseline's KlueNLIProcessor.get_labels order, so label ids match its checkpoints.
    label_list = ("entailment", "contradiction", "neutral")
    text_keys = ("premise", "hypothesis")
    label_keys = ("gold_label",)
    primary_metric = "accuracy"


@register("klue-sts")
class KlueSTS(KlueJsonTask):
    kind = "regression"
    text_keys = ("sentence1", "sentence2")
    label_keys = ("labels", "real-label")
    primary_metric = "pearson"

    def parse_label(self, value, path, line_no):
        return similarity_score(value, f"{path}: example {line_no}", "real-label")

    def compute_metrics(self, predictions, examples):
        gold = self.gold(examples)
        return {**metrics.correlation(gold, predictions), "f1": klue_metrics.sts_f1(gold, predictions)}
