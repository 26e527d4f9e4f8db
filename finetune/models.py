"""Loading a local transformers encoder directory (ELECTRA, BERT, ALBERT, Funnel, ...) offline.

Fine-tuning never downloads: ``model_name_or_path`` must be a directory such as the one
``pytorch_convert.py`` writes (or a model already in the local Hugging Face cache).
"""
import contextlib
import json
import logging
import os
import pickle

from util.errors import UserInputError
from util.tokenization import read_tokenizer_config

logger = logging.getLogger(__name__)

# Files a tokenizer can be loaded from: our vocab.txt, or a transformers tokenizer.json.
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json")


def resolve_model_dir(config):
    """The model directory, or a one-line error telling the user to point at a local one."""
    path = config.model_name_or_path
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise UserInputError(f"{config.where('model_name_or_path')}: {path} has no config.json "
                                 "(expected a transformers model directory, e.g. from pytorch_convert.py)")
        check_not_generator(config, path)
        return path
    from transformers import AutoConfig

    try:  # a hub name already in the local cache still works offline
        AutoConfig.from_pretrained(path, local_files_only=True)
        return path
    except Exception:
        raise UserInputError(
            f"{config.where('model_name_or_path')}: model_name_or_path {path!r} is not a local directory "
            "and fine-tuning runs offline; point it at a local transformers directory "
            "(e.g. one made by pytorch_convert.py)"
        ) from None


def architectures(model_dir):
    try:
        with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
            return json.load(f).get("architectures") or []
    except (OSError, ValueError, AttributeError):
        return []  # model_load_errors names a config.json transformers cannot read


def check_not_generator(config, model_dir):
    """An ELECTRA generator (``ElectraForMaskedLM``, what pytorch_convert.py writes to
    ``--pt_generator_path``) is refused in one line naming the discriminator, unless
    ``allow_generator: true``: ELECTRA fine-tunes the discriminator, and a generator directory
    loads into a classifier without a word, its MLM head dropped."""
    if "ElectraForMaskedLM" not in architectures(model_dir):
        return
    if config.get("allow_generator"):
        logger.info("fine-tuning the generator %s (allow_generator: true)", model_dir)
        return
    name = os.path.basename(os.path.normpath(model_dir))
    beside = os.path.join(os.path.dirname(os.path.normpath(model_dir)), "discriminator".join(name.rsplit("generator", 1)))
    if "generator" in name and "ElectraForPreTraining" in architectures(beside):
        where = f"the discriminator, {beside},"
    else:
        where = "the discriminator (pytorch_convert.py's --pt_discriminator_path),"
    raise UserInputError(f"{config.where('model_name_or_path')}: {model_dir} is an ELECTRA generator "
                         f"(ElectraForMaskedLM in its config.json); fine-tune {where} or set allow_generator: true "
                         "to fine-tune the generator on purpose")


@contextlib.contextmanager
def model_load_errors(model_dir):
    """A model directory transformers cannot read (config.json not JSON, no weights, weights cut
    short by an interrupted copy) becomes one line naming it instead of a loader's traceback."""
    from safetensors import SafetensorError

    try:
        yield
    except (OSError, ValueError, RuntimeError, pickle.UnpicklingError, SafetensorError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserInputError(f"{model_dir}: cannot load the model ({reason}); copy the directory again "
                             "or rerun the step that wrote it") from None


def load_model(task, model_dir):
    """``task.build_model(model_dir)``, a directory transformers cannot read reported in one line."""
    with model_load_errors(model_dir):
        return task.build_model(model_dir)


def load_tokenizer(config, model_dir):
    """The fast tokenizer that gives the ids pretraining saw, cased as the YAML's ``do_lower_case`` says.

    A directory whose tokenizer_config.json records ``tokenizer_type: mecab_wordpiece`` (or
    ``mecab: true`` in the YAML) gets util.hf_tokenizer's MecabElectraTokenizerFast, the
    published mecab tokenization; any other gets WordPiece. Accents are never stripped:
    BERT's accent stripping decomposes Hangul into jamo.
    """
    from finetune.text import needs_mecab
    from util.vocab_identity import check_converted_vocab

    if os.path.isdir(model_dir):  # a vocab.txt replaced since the conversion would give the weights other tokens
        check_converted_vocab(model_dir)
    recorded = read_tokenizer_config(model_dir) if os.path.isdir(model_dir) else {}
    if "do_lower_case" in recorded and bool(recorded["do_lower_case"]) != config.do_lower_case:
        logger.warning("do_lower_case is %s in the YAML but %s in %s/tokenizer_config.json; using the YAML",
                       config.do_lower_case, recorded["do_lower_case"], model_dir)
    if os.path.isdir(model_dir) and not any(os.path.isfile(os.path.join(model_dir, name))
                                            for name in TOKENIZER_FILES):
        # transformers would fail deep inside with "TypeError: stat: path should be ...".
        raise UserInputError(f"{model_dir}: no tokenizer files (vocab.txt or tokenizer.json); copy them "
                             "from the model it was fine-tuned from")
    try:
        if os.path.isfile(os.path.join(model_dir, "vocab.txt")):
            from util.hf_tokenizer import load_tokenizer as load_ko_tokenizer

            kind = "mecab_wordpiece" if needs_mecab(config) else None
            return load_ko_tokenizer(model_dir, do_lower_case=config.do_lower_case, tokenizer_type=kind)
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(model_dir, local_files_only=True, use_fast=True,
                                             do_lower_case=config.do_lower_case, strip_accents=False)
    except (OSError, ValueError, TypeError) as e:
        raise UserInputError(f"{model_dir}: cannot load its tokenizer ({str(e).splitlines()[0]})") from None


def encoder_layers(model):
    """The list of transformer blocks of the encoder, for the families we know."""
    base = model.base_model
    encoder = getattr(base, "encoder", None) or getattr(base, "transformer", None)  # DistilBERT: transformer
    for attribute in ("layer", "albert_layer_groups", "blocks", "layers"):
        layers = getattr(encoder, attribute, None)
        if layers is not None and len(layers) > 0:
            return layers
    raise UserInputError(f"do_reinit: cannot find the encoder layers of {type(model).__name__}")


def reinit_top_layer(model):
    """Re-initialise the top encoder layer as Dialog-KoELECTRA's ``--do_reinit`` does: biases
    to 0, LayerNorm weights to 1, every other weight Xavier-uniform, drawn in parameter order.
    The top layer of a discriminator is tuned to replaced-token detection, and starting it
    afresh often helps small data sets. Norm weights are found by shape (any 1-D weight), so
    ALBERT's and DistilBERT's differently named norms are treated like ELECTRA's LayerNorm."""
    import torch

    top = encoder_layers(model)[-1]
    if isinstance(top, (list, tuple)) or top.__class__.__name__ == "ModuleList":
        top = top[-1]
    with torch.no_grad():
        for name, weight in top.named_parameters():
            if name.endswith(".bias"):
                weight.zero_()
            elif "LayerNorm.weight" in name or weight.dim() < 2:
                weight.fill_(1.0)
            else:
                torch.nn.init.xavier_uniform_(weight)
    return top
