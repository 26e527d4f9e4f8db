"""Question Pair (songys/Question_pair as split by KoELECTRA): ``question1 question2 is_duplicate``."""
from finetune.tasks.base import register
from finetune.tasks.sequence_classification import SequenceClassificationTask


@register("question-pair", "question_pair", "questionpair")
class QuestionPair(SequenceClassificationTask):
    label_list = ("0", "1")
    columns = ("question1", "question2", "is_duplicate")
    primary_metric = "accuracy"
    skip_empty_pairs = True  # as KoELECTRA's processor
