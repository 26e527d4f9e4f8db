"""Importing this package registers every task family with ``finetune.tasks.base``."""
import importlib.util

from finetune.tasks import hate_speech, kornli, korsts, nsmc, paws, question_pair  # noqa: F401
from finetune.tasks.base import TASKS, Task, get_task, register, task_family  # noqa: F401

# NER and KorQuAD are written in parallel: import them as soon as their modules exist
# (plainly, so an error inside them is not hidden).
for _name in ("ner", "korquad"):
    if importlib.util.find_spec(f"finetune.tasks.{_name}") is not None:
        importlib.import_module(f"finetune.tasks.{_name}")
