"""KorSTS (kakaobrain/KorNLUDatasets): ``genre filename year id score sentence1 sentence2``.

Regression on the 0-5 similarity score; the seeds report Spearman correlation.
"""
import math

from finetune import metrics
from finetune.tasks.base import register
from finetune.tasks.sequence_classification import SequenceClassificationTask
from util.errors import UserInputError


@register("korsts")
class KorSTS(SequenceClassificationTask):
    kind = "regression"
    columns = ("sentence1", "sentence2", "score")
    primary_metric = "spearman"

    def parse_label(self, value, path, line_no):
        try:
            score = float(value)
        except ValueError:
            score = math.nan
        if not 0.0 <= score <= 5.0:
            raise UserInputError(f"{path}:{line_no}: score {value.strip()!r} is not a number in [0, 5]")
        return score

    def compute_metrics(self, predictions, examples):
        return metrics.correlation(self.gold(examples), predictions)
