"""KorSTS (kakaobrain/KorNLUDatasets): ``genre filename year id score sentence1 sentence2``.

Regression on the 0-5 similarity score; the seeds report Spearman correlation.
"""
import math

from finetune import metrics
from finetune.tasks.base import register
from finetune.tasks.sequence_classification import SequenceClassificationTask
from util.errors import UserInputError


def similarity_score(value, where, name="score"):
    """A 0-5 similarity score (KorSTS, KLUE-STS), or one line naming ``where`` it was read."""
    try:
        score = float(value)
    except (TypeError, ValueError):
        score = math.nan
    if not 0.0 <= score <= 5.0:
        shown = value.strip() if isinstance(value, str) else value
        raise UserInputError(f"{where}: {name} {shown!r} is not a number in [0, 5]")
    return score


@register("korsts")
class KorSTS(SequenceClassificationTask):
    kind = "regression"
    columns = ("sentence1", "sentence2", "score")
    primary_metric = "spearman"

    def parse_label(self, value, path, line_no):
        return similarity_score(value, f"{path}:{line_no}")

    def compute_metrics(self, predictions, examples):
        return metrics.correlation(self.gold(examples), predictions)
