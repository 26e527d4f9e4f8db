"""Korean HateSpeech (BEEP!) in KoELECTRA's layout: ``title comment bias hate``, 3 classes.

The comment alone is classified, as in both originals (KoELECTRA's and Dialog-KoELECTRA's
HateSpeechProcessor read column 1, the comment, and nothing else), so the macro F1 is
comparable with their 68.26. ``hate_speech_input: title+comment`` feeds the news title and
the comment as a sentence pair instead, an experiment of ours. The label is the ``hate``
column (none / offensive / hate); macro F1 selects the best checkpoint.
"""
from finetune import metrics
from finetune.tasks.base import register
from finetune.tasks.sequence_classification import SequenceClassificationTask
from util.errors import UserInputError

INPUTS = {"comment": ("comment", None, "hate"), "title+comment": ("title", "comment", "hate")}


@register("hate-speech", "hate_speech", "korean-hate-speech")
class HateSpeech(SequenceClassificationTask):
    label_list = ("none", "offensive", "hate")
    primary_metric = "macro_f1"
    config_defaults = {"hate_speech_input": "comment"}

    @property
    def columns(self):
        choice = str(getattr(self.config, "hate_speech_input", None) or "comment").lower().replace("_", "+")
        if choice not in INPUTS:
            where = self.config.where("hate_speech_input") if hasattr(self.config, "where") else "hate_speech_input"
            raise UserInputError(f"{where}: hate_speech_input must be one of {', '.join(INPUTS)}, got {choice!r}")
        return INPUTS[choice]

    def compute_metrics(self, predictions, examples):
        return metrics.macro_f1(self.gold(examples), predictions, label_ids=list(self.label_list))
