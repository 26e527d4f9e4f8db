"""What a fine-tuned directory says about itself: its head, labels, task settings and positions.

``config.json`` names the head (``architectures``), the labels (``id2label``) and the longest
input (``max_position_embeddings``); ``finetune_config.json`` the task, ``max_seq_len`` and the
task's own keys (``doc_stride``, ``ner_format``, ...). Reading them needs no framework.
"""
import dataclasses
import functools
import os

from util.errors import UserInputError
from util.files import read_json

FINETUNE_CONFIG = "finetune_config.json"
HEAD_KINDS = {"ForSequenceClassification": "classification", "ForTokenClassification": "token_classification",
              "ForQuestionAnswering": "span_extraction", "ForDependencyParsing": "dependency_parsing"}


@dataclasses.dataclass
class ModelInfo:
    """What a fine-tuned directory says about itself."""
    model_dir: str
    kind: str  # classification | regression | token_classification | span_extraction | dependency_parsing
    family: object  # task family (nsmc, korsts, ...) from finetune_config.json, or None
    labels: list
    settings: object  # a finetune.config.FinetuneConfig rebuilt from finetune_config.json
    positions: object = None  # config.json's max_position_embeddings: the longest input the model takes

    @functools.cached_property
    def pair_input(self):
        """True: pairs required; False: single texts; None: unknown (a TAB makes a pair).

        Decided by the task's own columns as the run configured them (Hate Speech reads the
        comment alone or title + comment, by its ``hate_speech_input`` key)."""
        if self.kind == "regression":
            return True
        if self.kind != "classification" or self.family is None:
            return None
        from finetune.tasks import get_task

        try:
            columns = get_task(self.settings.task, self.settings).columns
        except (UserInputError, AttributeError):
            return None
        return columns[1] is not None


def describe_model_dir(model_dir):
    """ModelInfo of a fine-tuned directory, or a one-line UserInputError saying why it is not one."""
    from finetune.config import DEFAULTS, FinetuneConfig

    if not os.path.isdir(model_dir):
        raise UserInputError(f"model directory not found: {model_dir}")
    config_path = os.path.join(model_dir, "config.json")
    if not os.path.isfile(config_path):
        raise UserInputError(f"{model_dir}: no config.json, so not a fine-tuned model directory "
                             "(expected ckpt_dir/<task>/best_model from run_finetune.py)")
    config = read_json(config_path, "model config")
    architecture = (config.get("architectures") or ["?"])[0]
    kind = next((k for suffix, k in HEAD_KINDS.items() if architecture.endswith(suffix)), None)
    if kind is None:
        raise UserInputError(f"{model_dir}: {architecture} is not a fine-tuned model (no task head); "
                             "fine-tune it with run_finetune.py and pass its best_model/ directory")
    if kind == "classification" and (config.get("problem_type") == "regression" or config.get("num_labels") == 1
                                     or len(config.get("id2label") or {}) == 1):
        kind = "regression"
    labels = [config["id2label"][str(i)] for i in range(len(config.get("id2label") or {}))]
    values = dict(DEFAULTS)
    settings_path = os.path.join(model_dir, FINETUNE_CONFIG)
    if os.path.isfile(settings_path):
        values.update(read_json(settings_path, "fine-tuning config"))
    else:  # a directory saved without our config: casing as its tokenizer recorded it
        from util.tokenization import read_tokenizer_config

        values["do_lower_case"] = bool(read_tokenizer_config(model_dir).get("do_lower_case", False))
    # The tokenizer (and its tokenizer_type, which decides mecab) is the one saved here.
    values["model_name_or_path"] = model_dir
    family = None
    if values.get("task"):
        from finetune.tasks import task_family

        try:
            family = task_family(values["task"])
        except UserInputError:
            family = None
    return ModelInfo(model_dir, kind, family, labels, FinetuneConfig(values, source=settings_path),
                     config.get("max_position_embeddings"))
