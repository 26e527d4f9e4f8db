"""Whether a run tokenizes with mecab, and the text hooks the tasks call before tokenizing.

A ``mecab_wordpiece`` vocab (recorded as ``tokenizer_type`` in the model directory's
``tokenizer_config.json``), or ``mecab: true`` in the YAML, means finetune.models loads
util.hf_tokenizer's MecabElectraTokenizerFast, which runs the published mecab
tokenization itself — the algorithm util.tokenization applied when the vocab and the
pretraining data were built, so fine-tuning sees the tokens pretraining saw. Texts
therefore reach the tokenizer unchanged: splitting them into space-separated morphemes
first, as this module once did, gives other tokens than the published system.
"""
import functools
import os

from util.tokenization import CONFIG_NAME, read_tokenizer_config


@functools.lru_cache(maxsize=64)
def _dir_wants_mecab(directory):
    if not directory or not os.path.isfile(os.path.join(directory, CONFIG_NAME)):
        return False
    return read_tokenizer_config(directory).get("tokenizer_type") == "mecab_wordpiece"


def needs_mecab(info):
    """Whether this config, tokenizer, directory or dict calls for mecab tokenization.

    ``info`` may be the fine-tuning config (``mecab`` and ``model_name_or_path``), a
    transformers tokenizer (its ``name_or_path`` directory), a model directory path, or a
    dict such as a parsed ``tokenizer_config.json`` (``tokenizer_type``, optional ``mecab``).
    """
    if info is None:
        return False
    if isinstance(info, (str, os.PathLike)):
        return _dir_wants_mecab(os.fspath(info))
    if isinstance(info, dict):
        return bool(info.get("mecab")) or info.get("tokenizer_type") == "mecab_wordpiece"
    if getattr(info, "mecab", False) is True:
        return True
    init_kwargs = getattr(info, "init_kwargs", None)
    if isinstance(init_kwargs, dict) and init_kwargs.get("tokenizer_type") == "mecab_wordpiece":
        return True
    directory = getattr(info, "model_name_or_path", None) or getattr(info, "name_or_path", None)
    return _dir_wants_mecab(os.fspath(directory)) if directory else False


def mecab_decision(config, model_dir):
    """One line for the log: whether this run splits text with mecab, and what decided it."""
    if getattr(config, "mecab", False) is True:
        return f"mecab pre-splitting: on (mecab: true, {config.where('mecab')})"
    recorded = read_tokenizer_config(model_dir) if os.path.isfile(os.path.join(model_dir, CONFIG_NAME)) else {}
    kind = recorded.get("tokenizer_type")
    if kind == "mecab_wordpiece":
        return f"mecab pre-splitting: on ({model_dir}/{CONFIG_NAME} records tokenizer_type mecab_wordpiece)"
    why = f"records tokenizer_type {kind}" if kind else "records no tokenizer_type"
    return f"mecab pre-splitting: off ({model_dir}/{CONFIG_NAME} {why}, and mecab is false)"


def does_mecab(tokenizer):
    """Whether ``tokenizer`` runs the mecab tokenization itself (MecabElectraTokenizerFast, or
    util.rust_tokenizer's RustTokenizer over a mecab_wordpiece vocab)."""
    if getattr(tokenizer, "runs_mecab", False) is True:
        return True
    return getattr(tokenizer, "init_kwargs", {}).get("tokenizer_type") == "mecab_wordpiece" and \
        type(tokenizer).__name__ == "MecabElectraTokenizerFast"


def prepare_text(text, config_or_tokenizer_info):
    """The text as the tokenizer takes it: unchanged (the mecab tokenizer splits it itself)."""
    return text


def prepare_texts(texts, config_or_tokenizer_info):
    """``prepare_text`` over a list."""
    return list(texts)
