"""NSMC (e9t/nsmc): ``ratings_train.txt``/``ratings_test.txt``, ``id<TAB>document<TAB>label``.

Documents may be empty and may hold pandas-escaped quotes (``\"\"\"...\"\"\"``); both are kept
as written, as KoELECTRA and Dialog-KoELECTRA read them.
"""
from finetune.tasks.base import register
from finetune.tasks.sequence_classification import SequenceClassificationTask


@register("nsmc")
class NSMC(SequenceClassificationTask):
    label_list = ("0", "1")
    label_names = {"0": "negative", "1": "positive"}
    columns = ("document", None, "label")
    primary_metric = "accuracy"
