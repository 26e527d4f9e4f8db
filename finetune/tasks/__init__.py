"""Importing this package registers every task family with ``finetune.tasks.base``."""
from finetune.tasks import (  # noqa: F401
    hate_speech, klue_dp, korquad, kornli, korsts, ner, nsmc, paws, question_pair, sentence_classification)
from finetune.tasks import klue, klue_ner  # noqa: F401  (KLUE-NLI, KLUE-STS, KLUE-NER)
from finetune.tasks.base import TASKS, Task, get_task, register, task_family  # noqa: F401


def task_config_defaults():
    """The YAML keys task families add (``Task.config_defaults``), with their defaults."""
    return {k: v for cls in TASKS.values() for k, v in getattr(cls, "config_defaults", {}).items()}
