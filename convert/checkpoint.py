"""Reading a TF ELECTRA checkpoint and deciding the architecture it holds.

The sizes come from ``pretrain_config.json`` in the model directory (or ``--config_file``):
its ``bert_config`` describes the discriminator and ``generator_bert_config`` the generator,
so the generator gets its own hidden size, heads and embedding size. Released upstream
ELECTRA / Dialog-KoELECTRA checkpoints have no such file; for them every size except the
number of attention heads is read off the variable shapes (heads follow upstream's
``hidden_size // 64`` unless given).

Variable names are upstream ELECTRA's (model/modeling.py, run_pretraining.py). A torch
backend checkpoint (``torch_checkpoints/step-<N>.pt``) records each weight's upstream name,
so it is read into the same names (``open_checkpoint``) without TensorFlow, and everything
after the reading is the same code for both.
"""
import dataclasses
import glob
import os
import re

from model.checkpoint_reader import (CheckpointVariables, encoder_shapes, is_training_state,  # noqa: F401
                                     resolve_checkpoint)
from pretrain import layout
from util.errors import UserInputError
from util.files import read_json

CONFIG_NAME = "pretrain_config.json"
BERT_CONFIG_KEYS = (
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
    "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
    "type_vocab_size", "initializer_range", "embedding_size",
)
BERT_CONFIG_DEFAULTS = {
    "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
    "type_vocab_size": 2, "initializer_range": 0.02,
}


@dataclasses.dataclass
class Architecture:
    """Everything the converter needs to name and size the variables of one checkpoint."""

    discriminator: dict  # bert_config keys
    generator: dict = None  # None when the checkpoint has no generator
    # "generator" for upstream's default separate generator; "electra" when the generator
    # shares every weight with the discriminator (untied_generator=False).
    generator_scope: str = "generator"
    generator_embeddings_scope: str = "electra"  # "generator" with untied_generator_embeddings
    discriminator_output_name: str = "dense_1"  # upstream's and ours; transformers' name dense_prediction is accepted too
    source: str = ""
    notes: list = dataclasses.field(default_factory=list)
    pretrain_config: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Source:
    """What ``--tf_ckpt_path`` named, read: the variables in upstream's names and where they came from."""

    kind: str  # "tf" or "torch"
    prefix: str  # the TF checkpoint prefix, or the torch checkpoint file
    model_dir: str  # where pretrain_config.json and vocab.txt are looked for
    variables: object  # CheckpointVariables or ArrayVariables
    torch_state: dict = None  # the torch checkpoint's model state dict (transformers' names, prefixed)

    def reference(self, arch):
        """The network the converted models are checked against: TF ops on the checkpoint's
        variables, or the torch backend's own network holding the torch checkpoint's weights."""
        if self.kind == "torch":
            from convert.torch_reference import TorchReference

            return TorchReference(self.torch_state, arch)
        from convert.tf_reference import ReferenceElectra

        return ReferenceElectra(self.variables, arch)


def _tf_steps(directory):
    """Steps of the TF checkpoints in a local directory (by their ``model.ckpt-<N>`` names; -1 unnamed)."""
    steps = []
    for index in glob.glob(os.path.join(glob.escape(directory), "*.index")):
        match = re.search(r"-(\d+)\.index$", index)
        steps.append(int(match.group(1)) if match else -1)
    return steps


def open_checkpoint(path, log=print):
    """``--tf_ckpt_path`` read as a Source: a TF-v1 checkpoint (prefix or model directory), or the
    torch backend's (a ``step-<N>.pt`` file or a model directory holding ``torch_checkpoints/``).

    A directory holding both kinds converts its newest by step (the torch one on a tie: a TF
    checkpoint written beside it by a conversion holds the same values), said in one line.
    Only the TF kind imports TensorFlow.
    """
    path = os.fspath(path).rstrip("/") or "/"
    torch_file = path.endswith(".pt") and os.path.isfile(path)
    if not torch_file and not layout.is_remote(path) and os.path.isdir(path):
        torch_found = layout.torch_checkpoints(path)
        tf_steps = _tf_steps(path)
        if torch_found and tf_steps:
            step, newest = torch_found[-1]
            if max(tf_steps) > step:
                log(f"{path} holds TF and torch checkpoints: converting the newest, the TF one at step {max(tf_steps)}")
                torch_found = []
            else:
                log(f"{path} holds TF and torch checkpoints: converting the newest, {newest} (step {step})")
        if torch_found:
            path, torch_file = torch_found[-1][1], True
        elif not tf_steps:
            raise UserInputError(f"{path}: no checkpoint in this directory, neither a TF one (*.index) nor the torch "
                                 f"backend's ({layout.TORCH_CHECKPOINT_DIR}/step-<N>.pt)")
    if torch_file:
        from model.checkpoint_reader import ArrayVariables
        from pretrain.torch_backend import checkpoint as torch_checkpoint

        state = torch_checkpoint.read(path)
        # <model_dir>/torch_checkpoints/step-<N>.pt: the config and vocab are two levels up
        # (one, for a file copied out of that layout).
        model_dir = os.path.dirname(os.path.abspath(path))
        if os.path.basename(model_dir) == layout.TORCH_CHECKPOINT_DIR:
            model_dir = os.path.dirname(model_dir)
        variables = ArrayVariables(path, torch_checkpoint.tf_arrays(state), model_dir, global_step=state["step"],
                                   has_optimizer_slots=True)
        return Source("torch", path, model_dir, variables, state["model"])
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        raise UserInputError(f"{path}: not a torch checkpoint, and a TF one needs TensorFlow, which is not installed "
                             "here; convert it where TensorFlow is") from None
    prefix, model_dir = resolve_checkpoint(path)
    return Source("tf", prefix, model_dir, CheckpointVariables(prefix))


def _validated_bert_config(config, where):
    if not isinstance(config, dict):
        raise UserInputError(f"{where}: expected a JSON object")
    merged = dict(BERT_CONFIG_DEFAULTS, **config)
    if merged.get("embedding_size") is None:
        merged["embedding_size"] = merged.get("hidden_size")
    for key in BERT_CONFIG_KEYS:
        if merged.get(key) is None:
            raise UserInputError(f"{where}: missing key {key!r}")
    for key in BERT_CONFIG_KEYS:
        if key not in ("hidden_act",) and key in config and not isinstance(config[key], (int, float)):
            raise UserInputError(f"{where}: {key} must be a number, not {config[key]!r}")
    if merged["hidden_size"] % merged["num_attention_heads"]:
        raise UserInputError(f"{where}: hidden_size {merged['hidden_size']} is not a multiple of "
                             f"num_attention_heads {merged['num_attention_heads']}")
    return {key: merged[key] for key in BERT_CONFIG_KEYS}


def find_pretrain_config(model_dir, config_file=None):
    """(config dict, its path) from --config_file or the model directory; ({}, None) if neither."""
    path = config_file or os.path.join(model_dir, CONFIG_NAME)
    if config_file is None and not os.path.isfile(path):
        return {}, None
    return read_json(path, "pretraining config"), path


def describe(variables, pretrain_config, config_path, num_attention_heads=None,
             generator_num_attention_heads=None, hidden_act=None):
    """The Architecture of the checkpoint: sizes from the config, else from variable shapes."""
    arch_names = {}
    if "discriminator_predictions/dense_prediction/kernel" in variables:
        arch_names["discriminator_output_name"] = "dense_prediction"
    if "bert_config" in pretrain_config:
        arch = _from_config(pretrain_config, config_path, variables)
        if any(v is not None for v in (num_attention_heads, generator_num_attention_heads, hidden_act)):
            arch.notes.append(f"size flags ignored: {config_path} gives the sizes")
    else:
        arch = _from_shapes(variables, num_attention_heads, generator_num_attention_heads, hidden_act)
        if config_path:
            arch.notes.insert(0, f"{config_path} has no bert_config; sizes read from the checkpoint")
    arch.pretrain_config = pretrain_config
    for key, value in arch_names.items():
        setattr(arch, key, value)
    return arch


def _from_config(config, path, variables):
    disc = _validated_bert_config(config["bert_config"], f"{path}: bert_config")
    gen = None
    if config.get("generator_bert_config") is not None:
        gen = _validated_bert_config(config["generator_bert_config"], f"{path}: generator_bert_config")
    untied_generator = config.get("untied_generator", True)
    scope = "generator" if untied_generator else "electra"
    if config.get("uniform_generator"):
        gen = None  # replacements sampled uniformly: the checkpoint has no generator
    elif not untied_generator:
        gen = dict(disc)  # upstream builds the tied generator with the discriminator's config
    elif gen is None and "generator_predictions/output_bias" in variables:
        raise UserInputError(f"{path}: the checkpoint has a generator but the config has no "
                             "generator_bert_config")
    if config.get("electric_objective") or config.get("two_tower_generator"):
        raise UserInputError(f"{path}: Electric / two-tower generators have no transformers "
                             "equivalent; only ELECTRA checkpoints convert")
    return Architecture(
        discriminator=disc, generator=gen, generator_scope=scope,
        generator_embeddings_scope="generator" if config.get("untied_generator_embeddings") else "electra",
        source=path)


def _from_shapes(variables, heads, gen_heads, hidden_act):
    notes = []

    def encoder_sizes(scope, emb_scope, heads, what):
        sizes = {key: value for key, (value, _, _) in
                 encoder_shapes(variables, scope, emb_scope, "; pass --config_file").items()}
        if heads is None:
            heads = max(1, sizes["hidden_size"] // 64)
            notes.append(f"{what}: num_attention_heads is not stored in a checkpoint; using "
                         f"hidden_size // 64 = {heads} as upstream ELECTRA does "
                         f"(pass --{'generator_' if what == 'generator' else ''}num_attention_heads otherwise)")
        return _validated_bert_config(dict(sizes, num_attention_heads=heads, hidden_act=hidden_act or "gelu"),
                                      f"{variables.prefix} ({what} sizes read from variable shapes)")

    disc = encoder_sizes("electra", "electra", heads, "discriminator")
    arch = Architecture(discriminator=disc, source="variable shapes (no pretrain_config.json)", notes=notes)
    if any(n.startswith("generator/encoder/") for n in variables.shapes):
        arch.generator_embeddings_scope = (
            "generator" if "generator/embeddings/word_embeddings" in variables else "electra")
        arch.generator = encoder_sizes("generator", arch.generator_embeddings_scope, gen_heads, "generator")
    elif "generator_predictions/output_bias" in variables:
        arch.generator_scope = "electra"  # generator and discriminator share the encoder
        arch.generator = dict(disc)
        notes.append("generator shares the discriminator's encoder (untied_generator=False)")
    return arch
