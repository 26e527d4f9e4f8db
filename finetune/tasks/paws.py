"""PAWS-X Korean: ``id sentence1 sentence2 label`` (1 = paraphrase)."""
from finetune.tasks.base import register
from finetune.tasks.sequence_classification import SequenceClassificationTask


@register("paws", "paws-x", "pawsx")
class Paws(SequenceClassificationTask):
    label_list = ("0", "1")
    columns = ("sentence1", "sentence2", "label")
    primary_metric = "accuracy"
    skip_empty_pairs = True  # a few PAWS-X pairs lost a side in translation
