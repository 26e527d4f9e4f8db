"""Text as the model's vocab expects it: mecab-ko morphemes split by spaces, or unchanged.

transformers' tokenizers do not know mecab, so a ``mecab_wordpiece`` vocab (recorded as
``tokenizer_type`` in the model directory's ``tokenizer_config.json``), or ``mecab: true`` in
the YAML, means every text is pre-split here before the fast tokenizer sees it — the same
split ``util.tokenization.KoTokenizer`` applied when the vocab and the pretraining data were
built, so fine-tuning sees the tokens pretraining saw.
"""
import functools
import os

from util.tokenization import CONFIG_NAME, MecabSplitter, read_tokenizer_config

_splitter = MecabSplitter()


@functools.lru_cache(maxsize=64)
def _dir_wants_mecab(directory):
    if not directory or not os.path.isfile(os.path.join(directory, CONFIG_NAME)):
        return False
    return read_tokenizer_config(directory).get("tokenizer_type") == "mecab_wordpiece"


def needs_mecab(info):
    """Whether texts must be mecab-split for this config, tokenizer, directory or dict.

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


def prepare_text(text, config_or_tokenizer_info):
    """``text`` split into mecab morphemes when the vocab needs it; None and "" pass through."""
    if not text or not needs_mecab(config_or_tokenizer_info):
        return text
    return _splitter(text)


def prepare_texts(texts, config_or_tokenizer_info):
    """``prepare_text`` over a list, deciding once."""
    if not needs_mecab(config_or_tokenizer_info):
        return list(texts)
    return [_splitter(t) if t else t for t in texts]
