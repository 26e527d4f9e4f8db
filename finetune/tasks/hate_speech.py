"""Korean HateSpeech (BEEP!) in KoELECTRA's layout: ``title comment bias hate``, 3 classes.

The news title and the comment go in as a sentence pair; the label is the ``hate`` column
(none / offensive / hate). The seeds report macro F1, which selects the best checkpoint.
"""
from finetune import metrics
from finetune.tasks.base import register
from finetune.tasks.sequence_classification import SequenceClassificationTask


@register("hate-speech", "hate_speech", "korean-hate-speech")
class HateSpeech(SequenceClassificationTask):
    label_list = ("none", "offensive", "hate")
    columns = ("title", "comment", "hate")
    primary_metric = "macro_f1"

    def compute_metrics(self, predictions, examples):
        return metrics.macro_f1(self.gold(examples), predictions, label_ids=list(self.label_list))
