"""Tiny TF checkpoints laid out exactly like upstream ELECTRA's (and so like ours).

The variable list is written out here by hand from upstream model/modeling.py and
run_pretraining.py (not taken from convert/), so the tests check the converter's names
against an independent account of them.
"""
import json
import os

import numpy as np

from util.tokenization import SPECIAL_TOKENS, tokenizer_config


def bert_config(hidden, layers, heads, embedding, vocab_size, max_positions=40, act="gelu"):
    return {"vocab_size": vocab_size, "hidden_size": hidden, "num_hidden_layers": layers,
            "num_attention_heads": heads, "intermediate_size": 4 * hidden, "hidden_act": act,
            "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": max_positions, "type_vocab_size": 2, "initializer_range": 0.02,
            "embedding_size": embedding}


def _encoder_vars(cfg, scope, emb_scope, with_embeddings):
    h, e, i = cfg["hidden_size"], cfg["embedding_size"], cfg["intermediate_size"]
    out = {}
    if with_embeddings:
        out[f"{emb_scope}/embeddings/word_embeddings"] = [cfg["vocab_size"], e]
        out[f"{emb_scope}/embeddings/token_type_embeddings"] = [cfg["type_vocab_size"], e]
        out[f"{emb_scope}/embeddings/position_embeddings"] = [cfg["max_position_embeddings"], e]
        out[f"{emb_scope}/embeddings/LayerNorm/gamma"] = [e]
        out[f"{emb_scope}/embeddings/LayerNorm/beta"] = [e]
    if e != h:
        out[f"{scope}/embeddings_project/kernel"] = [e, h]
        out[f"{scope}/embeddings_project/bias"] = [h]
    for n in range(cfg["num_hidden_layers"]):
        p = f"{scope}/encoder/layer_{n}"
        for name in ("query", "key", "value"):
            out[f"{p}/attention/self/{name}/kernel"] = [h, h]
            out[f"{p}/attention/self/{name}/bias"] = [h]
        out[f"{p}/attention/output/dense/kernel"] = [h, h]
        out[f"{p}/attention/output/dense/bias"] = [h]
        out[f"{p}/attention/output/LayerNorm/gamma"] = [h]
        out[f"{p}/attention/output/LayerNorm/beta"] = [h]
        out[f"{p}/intermediate/dense/kernel"] = [h, i]
        out[f"{p}/intermediate/dense/bias"] = [i]
        out[f"{p}/output/dense/kernel"] = [i, h]
        out[f"{p}/output/dense/bias"] = [h]
        out[f"{p}/output/LayerNorm/gamma"] = [h]
        out[f"{p}/output/LayerNorm/beta"] = [h]
    return out


def variable_shapes(disc, gen, untied_embeddings=False, untied_generator=True,
                    disc_output_name="dense_1"):
    """Every model variable of an ELECTRA pretraining checkpoint -> shape."""
    shapes = _encoder_vars(disc, "electra", "electra", True)
    h = disc["hidden_size"]
    shapes.update({
        "discriminator_predictions/dense/kernel": [h, h], "discriminator_predictions/dense/bias": [h],
        f"discriminator_predictions/{disc_output_name}/kernel": [h, 1],
        f"discriminator_predictions/{disc_output_name}/bias": [1],
    })
    if gen is not None:
        if untied_generator:
            emb_scope = "generator" if untied_embeddings else "electra"
            shapes.update(_encoder_vars(gen, "generator", emb_scope, untied_embeddings))
        table_width = gen["embedding_size"]
        shapes.update({
            "generator_predictions/dense/kernel": [gen["hidden_size"], table_width],
            "generator_predictions/dense/bias": [table_width],
            "generator_predictions/LayerNorm/gamma": [table_width],
            "generator_predictions/LayerNorm/beta": [table_width],
            "generator_predictions/output_bias": [gen["vocab_size"]],
        })
    return shapes


def save_checkpoint(prefix, shapes, seed=0, optimizer_slots=True, step=7, overrides=None, scale=0.3):
    """Write random values under exactly these names (plus training state) as a TF V2 checkpoint.

    ``scale`` is the weights' standard deviation: 0.3 makes tiny models' attention sharp, so a
    misplaced weight shows; deep models need trained-like scales (~0.05) to stay well conditioned.
    """
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in shapes.items():
        base = 1.0 if name.endswith("gamma") else 0.0
        tensors[name] = (base + scale * rng.standard_normal(shape)).astype(np.float32)
    tensors.update(overrides or {})
    if optimizer_slots:
        for name in list(shapes):
            tensors[name + "/adam_m"] = np.zeros(shapes[name], np.float32)
            tensors[name + "/adam_v"] = np.zeros(shapes[name], np.float32)
        tensors["current_loss_scale"] = np.float32(32768.0)
        tensors["good_steps"] = np.int64(3)
    tensors["global_step"] = np.int64(step)
    names = sorted(tensors)
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])
    name = os.path.basename(prefix)  # the `checkpoint` state file, relative like the Saver writes it
    with open(os.path.join(os.path.dirname(prefix), "checkpoint"), "w") as f:
        f.write(f'model_checkpoint_path: "{name}"\nall_model_checkpoint_paths: "{name}"\n')
    return tensors


def write_vocab_dir(directory, vocab_size, tokenizer_type="wordpiece", do_lower_case=False):
    """A vocab with the special tokens first and filler pieces up to vocab_size."""
    os.makedirs(directory, exist_ok=True)
    tokens = SPECIAL_TOKENS + [f"[unused{i}]" for i in range(3)]
    syllables = "가나다라마바사아자차카타파하고노도로모보소오조초코토포호"
    for s in syllables:
        tokens += [s, "##" + s]
    tokens += [f"tok{i}" for i in range(vocab_size - len(tokens))]
    tokens = tokens[:vocab_size]
    with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
        f.writelines(t + "\n" for t in tokens)
    with open(os.path.join(directory, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_config(tokenizer_type, do_lower_case), f)


def make_model_dir(directory, disc, gen, untied_embeddings=False, untied_generator=True, with_config=True,
                   seed=0, tokenizer_type="wordpiece", do_lower_case=False, disc_output_name="dense_1",
                   drop=(), add=None, reshape=None, scale=0.3):
    """A model directory as run_pretraining.py writes it; drop/add/reshape make broken ones."""
    shapes = variable_shapes(disc, gen, untied_embeddings, untied_generator, disc_output_name)
    for name in drop:
        del shapes[name]
    shapes.update(add or {})
    shapes.update(reshape or {})
    save_checkpoint(os.path.join(directory, "model.ckpt-7"), shapes, seed=seed, scale=scale)
    write_vocab_dir(directory, disc["vocab_size"], tokenizer_type, do_lower_case)
    if with_config:
        config = {"model_name": "tiny", "vocab_size": disc["vocab_size"], "do_lower_case": do_lower_case,
                  "tokenizer_type": tokenizer_type, "untied_generator": untied_generator,
                  "untied_generator_embeddings": untied_embeddings, "max_seq_length": 32,
                  "bert_config": disc, "generator_bert_config": gen}
        with open(os.path.join(directory, "pretrain_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2)
    return directory
