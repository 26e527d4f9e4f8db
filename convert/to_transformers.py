"""Map upstream ELECTRA's TF variables onto transformers' Electra models and write the directories.

Unlike transformers' ``load_tf_weights_in_electra`` (which skips whatever it cannot place),
every model variable must be used exactly once and have the expected shape: a missing,
extra or mis-shaped variable stops the conversion before anything is written.
"""
import os
import shutil

from util.errors import UserInputError
from util.files import write_json
from util.tokenization import (CONFIG_NAME as TOKENIZER_CONFIG_NAME, SPECIAL_TOKENS, VOCAB_NAME,
                               read_tokenizer_config, resolve_vocab_path, tokenizer_config)
from util.vocab_file import VocabFile
from util.vocab_identity import RECORD_KEY


def _encoder_entries(cfg, scope, emb_scope):
    """(tf name, shape, hf key, transpose) for an ElectraModel under ``electra.``."""
    v, e, h, i = cfg["vocab_size"], cfg["embedding_size"], cfg["hidden_size"], cfg["intermediate_size"]
    entries = [
        (f"{emb_scope}/embeddings/word_embeddings", [v, e], "electra.embeddings.word_embeddings.weight", False),
        (f"{emb_scope}/embeddings/position_embeddings", [cfg["max_position_embeddings"], e],
         "electra.embeddings.position_embeddings.weight", False),
        (f"{emb_scope}/embeddings/token_type_embeddings", [cfg["type_vocab_size"], e],
         "electra.embeddings.token_type_embeddings.weight", False),
        (f"{emb_scope}/embeddings/LayerNorm/gamma", [e], "electra.embeddings.LayerNorm.weight", False),
        (f"{emb_scope}/embeddings/LayerNorm/beta", [e], "electra.embeddings.LayerNorm.bias", False),
    ]
    if e != h:
        entries += _dense(f"{scope}/embeddings_project", e, h, "electra.embeddings_project")
    for n in range(cfg["num_hidden_layers"]):
        tf_layer, hf_layer = f"{scope}/encoder/layer_{n}", f"electra.encoder.layer.{n}"
        for part in ("query", "key", "value"):
            entries += _dense(f"{tf_layer}/attention/self/{part}", h, h, f"{hf_layer}.attention.self.{part}")
        entries += _dense(f"{tf_layer}/attention/output/dense", h, h, f"{hf_layer}.attention.output.dense")
        entries += _layer_norm(f"{tf_layer}/attention/output/LayerNorm", h, f"{hf_layer}.attention.output.LayerNorm")
        entries += _dense(f"{tf_layer}/intermediate/dense", h, i, f"{hf_layer}.intermediate.dense")
        entries += _dense(f"{tf_layer}/output/dense", i, h, f"{hf_layer}.output.dense")
        entries += _layer_norm(f"{tf_layer}/output/LayerNorm", h, f"{hf_layer}.output.LayerNorm")
    return entries


def _dense(tf_scope, n_in, n_out, hf_module):
    # TF dense kernels are [in, out]; torch Linear weights are [out, in].
    return [(f"{tf_scope}/kernel", [n_in, n_out], f"{hf_module}.weight", True),
            (f"{tf_scope}/bias", [n_out], f"{hf_module}.bias", False)]


def _layer_norm(tf_scope, width, hf_module):
    return [(f"{tf_scope}/gamma", [width], f"{hf_module}.weight", False),
            (f"{tf_scope}/beta", [width], f"{hf_module}.bias", False)]


def discriminator_entries(arch):
    cfg = arch.discriminator
    h = cfg["hidden_size"]
    return (_encoder_entries(cfg, "electra", "electra")
            + _dense("discriminator_predictions/dense", h, h, "discriminator_predictions.dense")
            + _dense(f"discriminator_predictions/{arch.discriminator_output_name}", h, 1,
                     "discriminator_predictions.dense_prediction"))


def generator_entries(arch):
    cfg = arch.generator
    entries = _encoder_entries(cfg, arch.generator_scope, arch.generator_embeddings_scope)
    # The MLM head projects to the width of the generator's embedding table, then scores
    # against that same table (tied output embeddings) plus a bias.
    entries += _dense("generator_predictions/dense", cfg["hidden_size"], cfg["embedding_size"],
                      "generator_predictions.dense")
    entries += _layer_norm("generator_predictions/LayerNorm", cfg["embedding_size"],
                           "generator_predictions.LayerNorm")
    entries += [(f"{arch.generator_embeddings_scope}/embeddings/word_embeddings",
                 [cfg["vocab_size"], cfg["embedding_size"]], "generator_lm_head.weight", False),
                ("generator_predictions/output_bias", [cfg["vocab_size"]], "generator_lm_head.bias", False)]
    return entries


def _fmt(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


def check_variables(variables, arch):
    """Raise UserInputError naming every missing, extra or mis-shaped model variable."""
    expected = {}
    for name, shape, _, _ in discriminator_entries(arch) + (generator_entries(arch) if arch.generator else []):
        expected[name] = shape
    problems = []
    for name in expected:  # the network's order, so the first problem named is the earliest
        if name not in variables:
            problems.append(f"variable {name} is missing (expected shape {_fmt(expected[name])})")
        elif variables.shapes[name] != expected[name]:
            problems.append(f"variable {name} has shape {_fmt(variables.shapes[name])} in the checkpoint, "
                            f"expected {_fmt(expected[name])}")
    for name in sorted(set(variables.shapes) - set(expected)):
        problems.append(f"unexpected variable {name} with shape {_fmt(variables.shapes[name])}")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise UserInputError(f"{variables.prefix} (sizes from {arch.source}): "
                             + "; ".join(problems[:3]) + more)


def electra_config(cfg, architecture, vocab_size, pad_token_id=0):
    from transformers import ElectraConfig

    return ElectraConfig(
        vocab_size=vocab_size, embedding_size=cfg["embedding_size"], hidden_size=cfg["hidden_size"],
        num_hidden_layers=cfg["num_hidden_layers"], num_attention_heads=cfg["num_attention_heads"],
        intermediate_size=cfg["intermediate_size"], hidden_act=cfg["hidden_act"],
        hidden_dropout_prob=cfg["hidden_dropout_prob"],
        attention_probs_dropout_prob=cfg["attention_probs_dropout_prob"],
        max_position_embeddings=cfg["max_position_embeddings"], type_vocab_size=cfg["type_vocab_size"],
        initializer_range=cfg["initializer_range"],
        # upstream's contrib layer_norm uses epsilon 1e-12
        layer_norm_eps=1e-12, pad_token_id=pad_token_id, architectures=[architecture])


def build_model(variables, arch, which, pad_token_id=0):
    """An ElectraForPreTraining ("discriminator") or ElectraForMaskedLM ("generator") holding the weights."""
    import numpy as np
    import torch
    from transformers import ElectraForMaskedLM, ElectraForPreTraining

    if which == "discriminator":
        cfg, entries, cls = arch.discriminator, discriminator_entries(arch), ElectraForPreTraining
    else:
        cfg, entries, cls = arch.generator, generator_entries(arch), ElectraForMaskedLM
    model = cls(electra_config(cfg, cls.__name__, cfg["vocab_size"], pad_token_id))
    state = {}
    for name, _, key, transpose in entries:
        array = variables.get(name).astype(np.float32)
        state[key] = torch.from_numpy(np.ascontiguousarray(array.T if transpose else array))
    # strict: a key the mapping forgot, or one the model lacks, is a bug here, not user input.
    model.load_state_dict(state, strict=True)
    model.eval()
    return model


def tokenizer_settings(vocab_path, pretrain_config, vocab_size, do_lower_case=None, tokenizer_type=None):
    """(vocab_file, tokenizer_type, do_lower_case, pad id): flags, then the pretraining config, then the vocab dir."""
    vocab_file, directory = resolve_vocab_path(vocab_path)
    recorded = read_tokenizer_config(directory)
    if tokenizer_type is None:
        tokenizer_type = pretrain_config.get("tokenizer_type", recorded.get("tokenizer_type", "wordpiece"))
    if do_lower_case is None:
        do_lower_case = pretrain_config.get("do_lower_case", recorded.get("do_lower_case", False))
    vocab = VocabFile(vocab_file)  # ids are line numbers, as upstream and transformers read them
    if len(vocab) != vocab_size:
        raise UserInputError(f"{vocab_file}: {len(vocab)} lines, but the checkpoint's word embeddings "
                             f"have {vocab_size} rows; pass the vocab the model was trained with (--vocab_dir)")
    return vocab_file, tokenizer_type, bool(do_lower_case), vocab.ids["[PAD]"]


def write_tokenizer(directory, vocab_file, tokenizer_type, do_lower_case, max_length):
    shutil.copyfile(vocab_file, os.path.join(directory, VOCAB_NAME))
    config = tokenizer_config(tokenizer_type, do_lower_case)
    config["model_max_length"] = max_length
    write_json(os.path.join(directory, TOKENIZER_CONFIG_NAME), config)
    names = ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")  # SPECIAL_TOKENS' order
    write_json(os.path.join(directory, "special_tokens_map.json"), dict(zip(names, SPECIAL_TOKENS)))
    if tokenizer_type == "mecab_wordpiece":
        # The tokenizer class file and auto_map: AutoTokenizer(trust_remote_code=True) then
        # tokenizes as pretraining did, without this repository.
        from util.tokenization_mecab_electra import save_class_files

        save_class_files(directory, vocab_file)


def save_model_dir(model, directory, vocab_file, tokenizer_type, do_lower_case):
    """config.json + model.safetensors + tokenizer files into an (empty) directory. config.json records
    the vocab's sha256 beside the sizes, so a vocab.txt replaced later is refused (util/vocab_identity.py)."""
    setattr(model.config, RECORD_KEY, VocabFile(vocab_file).sha256)
    model.save_pretrained(directory, safe_serialization=True)
    write_tokenizer(directory, vocab_file, tokenizer_type, do_lower_case,
                    model.config.max_position_embeddings)
