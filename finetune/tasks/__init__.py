"""Importing this package registers every task family with ``finetune.tasks.base``."""
import importlib.util

from finetune.tasks import hate_speech, kornli, korsts, nsmc, paws, question_pair  # noqa: F401
from finetune.tasks.base import TASKS, Task, get_task, register, task_family  # noqa: F401

# NER and KorQuAD are written in parallel: import them as soon as their modules exist
# (plainly, so an error inside them is not hidden).
for _name in ("ner", "korquad"):
    if importlib.util.find_spec(f"finetune.tasks.{_name}") is not None:
        importlib.import_module(f"finetune.tasks.{_name}")


def task_config_defaults():
    """The YAML keys task families add (``Task.config_defaults``), with their defaults."""
    return {k: v for cls in TASKS.values() for k, v in getattr(cls, "config_defaults", {}).items()}
