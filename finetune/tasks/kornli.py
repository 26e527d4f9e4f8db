"""KorNLI (kakaobrain/KorNLUDatasets): ``sentence1 sentence2 gold_label``, 3 classes."""
from finetune.tasks.base import register
from finetune.tasks.sequence_classification import SequenceClassificationTask


@register("kornli")
class KorNLI(SequenceClassificationTask):
    label_list = ("contradiction", "entailment", "neutral")
    columns = ("sentence1", "sentence2", "gold_label")
    primary_metric = "accuracy"
