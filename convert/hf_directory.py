"""Reading a transformers ELECTRA directory (config.json + weights, as on the Hub) for the reverse conversion.

A directory is checked before its weights are loaded, so a user who passed the wrong one (a BERT
model, a fine-tuned classifier, the generator where the discriminator goes) gets one line naming
what was found. Weights are loaded with transformers' own ``from_pretrained`` (safetensors, .bin,
sharded, legacy key names), and every weight the model class needs must be in the files: nothing
is silently left at its random initialisation.
"""
import dataclasses
import os

from convert.checkpoint import BERT_CONFIG_KEYS
from util.errors import UserInputError
from util.files import read_json

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
MODEL_CLASSES = {"discriminator": "ElectraForPreTraining", "generator": "ElectraForMaskedLM"}
# The activations our TF graph (model/modeling.py) and upstream's define.
TF_ACTIVATIONS = ("gelu", "relu", "tanh", "linear")


@dataclasses.dataclass
class ElectraDirectory:
    path: str
    which: str  # "discriminator" or "generator"
    model: object  # ElectraForPreTraining / ElectraForMaskedLM, eval mode, float32
    sizes: dict  # bert_config keys, as pretrain_config.json records them
    stored_dtype: str  # the dtype the weights were saved in (config.json torch_dtype), "" if unknown


def _fail_unless_directory(path, flag):
    if not os.path.exists(path):
        raise UserInputError(f"{flag} {path}: no such directory")
    if not os.path.isdir(path):
        raise UserInputError(f"{flag} {path} is a file, not a transformers model directory")


def read_config(path, which, flag, flags=None):
    """config.json of an ELECTRA directory of the expected kind, or a one-line error saying what it is.
    ``flags`` names each kind's argument where the user gives it (default pytorch_convert.py's)."""
    _fail_unless_directory(path, flag)
    config_path = os.path.join(path, "config.json")
    if not os.path.isfile(config_path):
        raise UserInputError(f"{flag} {path}: no config.json, so not a transformers model directory")
    config = read_json(config_path, "model config")
    if not isinstance(config, dict):
        raise UserInputError(f"{config_path}: expected a JSON object")
    architectures = config.get("architectures") or []
    found = f"model_type {config.get('model_type')!r}" + (f" ({', '.join(architectures)})" if architectures else "")
    if config.get("model_type") != "electra":
        raise UserInputError(f"{config_path}: {found} is not ELECTRA; only ElectraForPreTraining (discriminator) "
                             "and ElectraForMaskedLM (generator) directories convert to an ELECTRA checkpoint")
    expected = MODEL_CLASSES[which]
    if architectures and expected not in architectures:
        other = [w for w, cls in MODEL_CLASSES.items() if cls in architectures]
        named = (flags or {}).get(other[0], f"--pt_{other[0]}_path") if other else None
        hint = (f"; it is a {other[0]}, {'pass' if named.startswith('--') else 'give'} it as {named}" if other else
                f"; the {which} of a pretrained ELECTRA is an {expected} (a fine-tuned model has lost that head)")
        raise UserInputError(f"{config_path}: {found}, not the {which} ({expected}){hint}")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise UserInputError(f"{config_path}: position_embedding_type {config['position_embedding_type']!r}; "
                             "upstream ELECTRA has absolute position embeddings only")
    if config.get("hidden_act", "gelu") not in TF_ACTIVATIONS:
        raise UserInputError(f"{config_path}: hidden_act {config['hidden_act']!r} is not one upstream ELECTRA "
                             f"defines ({', '.join(TF_ACTIVATIONS)})")
    if not any(os.path.isfile(os.path.join(path, name)) for name in WEIGHT_FILES):
        raise UserInputError(f"{flag} {path}: no weights ({' or '.join(WEIGHT_FILES[::2])})")
    return config


def load(path, which, flag, flags=None):
    """The directory's model with every weight read from its files, as an ElectraDirectory."""
    import transformers

    config = read_config(path, which, flag, flags)
    cls = getattr(transformers, MODEL_CLASSES[which])
    try:
        model, info = cls.from_pretrained(path, local_files_only=True, output_loading_info=True)
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        raise UserInputError(f"{flag} {path}: cannot load the weights ({str(e).strip().splitlines()[0]})") from None
    problems = [f"missing {key}" for key in info.get("missing_keys", [])]
    problems += [f"{key} has shape {list(old)} in the files, the config gives {list(new)}"
                 for key, old, new in info.get("mismatched_keys", [])]
    problems += [f"unexpected {key}" for key in info.get("unexpected_keys", [])]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise UserInputError(f"{flag} {path}: the weights do not fit {MODEL_CLASSES[which]}: "
                             + "; ".join(problems[:3]) + more)
    model = model.float().eval()
    hf = model.config
    sizes = {key: getattr(hf, key) for key in BERT_CONFIG_KEYS}
    return ElectraDirectory(path, which, model, sizes, str(config.get("torch_dtype") or config.get("dtype") or ""))


def vocab_source(directories):
    """The first directory holding a vocab.txt, or None."""
    for directory in directories:
        if directory and os.path.isfile(os.path.join(directory, "vocab.txt")):
            return directory
    return None
