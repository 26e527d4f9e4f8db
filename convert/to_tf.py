"""transformers ELECTRA directories -> a TF-v1 checkpoint with upstream ELECTRA's variable names.

The reverse of ``to_transformers``, through the same (tf name, shape, hf key, transpose) table,
so the two directions cannot drift apart. What gets written beside the checkpoint is what the
rest of the pipeline reads from a model directory: ``vocab.txt`` and ``tokenizer_config.json``
(when the transformers directory has a vocab) and ``pretrain_config.json`` with both networks'
sizes, heads included (a checkpoint's shapes do not give the heads).

Upstream ties the generator's embeddings to the discriminator's: the variables under
``electra/embeddings`` serve both networks, and the generator has its own (under
``generator/embeddings``) only with ``untied_generator_embeddings``. Two Hub directories each
carry a full embedding table; when they differ and the embeddings stay tied, the
discriminator's are written, as the tied graph would use one table for both.

Everything is built in a temporary directory beside the output and renamed into place at the
end, so an interrupted or failed conversion leaves nothing a later stage takes as complete.
"""
import os
import shutil

import numpy as np

from convert import hf_directory
from convert.checkpoint import Architecture
from convert.pipeline import size_line
from convert.to_transformers import discriminator_entries, generator_entries
from util.errors import UserInputError
from util.files import atomic_write, discard, put_in_place, temp_dir_beside, write_json
from util.tokenization import VOCAB_NAME, read_tokenizer_config, tokenizer_config
from util.vocab_file import VocabFile

CHECKPOINT_NAME = "model.ckpt"
PRETRAIN_CONFIG_NAME = "pretrain_config.json"


def output_prefix(path):
    """``--tf_ckpt_path`` -> checkpoint prefix: a directory gets ``DIR/model.ckpt``; a path whose last
    component names a checkpoint (contains ``ckpt``, e.g. ``out/model.ckpt-0``) is the prefix itself."""
    path = os.fspath(path)
    if os.path.isdir(path) or path.endswith(os.sep) or "ckpt" not in os.path.basename(path):
        return os.path.join(path.rstrip(os.sep) or os.sep, CHECKPOINT_NAME)
    return path


def _check_output_dir(directory, sources, overwrite):
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise UserInputError(f"--tf_ckpt_path {directory} is a file, not a directory")
    for source in sources:  # --overwrite replaces the whole output directory: never an input
        inside = os.path.commonpath([os.path.realpath(directory), os.path.realpath(source)])
        if inside == os.path.realpath(directory):
            raise UserInputError(f"--tf_ckpt_path {directory} holds the input {source}; write the checkpoint elsewhere")
    if os.path.isdir(directory) and os.listdir(directory) and not overwrite:
        raise UserInputError(f"{directory}: already exists and is not empty; pass --overwrite to replace it")


# How the user names the two directories and the untied layout: pytorch_convert.py --to_tf's flags, or,
# when a warm start converts them, run_pretraining.py's hparams (no such flags there).
CLI_WORDS = {"discriminator": "--pt_discriminator_path", "generator": "--pt_generator_path",
             "untie": "pass --untied_generator_embeddings", "untied": "--untied_generator_embeddings"}
WARM_START_WORDS = {"discriminator": "saved_model", "generator": "saved_generator",
                    "untie": "add --hparams '{\"untied_generator_embeddings\": true}'",
                    "untied": "untied_generator_embeddings"}


def architecture(disc, gen, untied_generator_embeddings, words=CLI_WORDS):
    """The Architecture the two directories describe, in upstream's layout."""
    if gen is not None:
        if gen.sizes["vocab_size"] != disc.sizes["vocab_size"]:
            raise UserInputError(f"{words['generator']} {gen.path}: vocab_size {gen.sizes['vocab_size']}, but the "
                                 f"discriminator's is {disc.sizes['vocab_size']}; the two must share one vocab")
        if not untied_generator_embeddings:
            differ = [f"{key} {gen.sizes[key]} vs {disc.sizes[key]}"
                      for key in ("embedding_size", "max_position_embeddings", "type_vocab_size")
                      if gen.sizes[key] != disc.sizes[key]]
            if differ:
                raise UserInputError(f"{words['generator']} {gen.path}: its embeddings cannot share the "
                                     f"discriminator's ({', '.join(differ)}); {words['untie']}")
    elif untied_generator_embeddings:
        raise UserInputError(f"{words['untied']} needs a generator ({words['generator']})")
    return Architecture(discriminator=disc.sizes, generator=gen.sizes if gen else None,
                        generator_embeddings_scope="generator" if untied_generator_embeddings else "electra",
                        source="transformers directories")


def map_weights(disc, gen, arch):
    """(tf name -> float32 array, [(tf name, kept hf key, dropped hf key)] where two weights share a name)."""
    tensors, owner, dropped = {}, {}, []
    networks = [(disc, discriminator_entries(arch))] + ([(gen, generator_entries(arch))] if gen else [])
    for directory, entries in networks:
        state = directory.model.state_dict()
        used = set()
        for name, shape, key, transpose in entries:
            used.add(key)
            array = state[key].detach().cpu().numpy().astype(np.float32)
            array = np.ascontiguousarray(array.T if transpose else array)
            if list(array.shape) != shape:  # the table and transformers' model disagree: a bug here
                raise AssertionError(f"{key} -> {name}: shape {list(array.shape)}, expected {shape}")
            label = f"{directory.which} {key}"
            if name not in tensors:
                tensors[name], owner[name] = array, label
            elif not np.array_equal(tensors[name], array):
                dropped.append((name, owner[name], label))
        unused = sorted(set(state) - used)
        if unused:  # a layout upstream has no variable for
            raise UserInputError(f"{directory.path}: weights with no upstream ELECTRA variable: {', '.join(unused[:3])}")
    return tensors, dropped


def write_checkpoint(prefix, tensors, state_file=True):
    """A TF V2 checkpoint holding exactly these variables, each in its array's dtype (float32 weights,
    an int64 ``global_step``), plus the ``checkpoint`` state file unless ``state_file`` is False."""
    import tensorflow as tf

    names = sorted(tensors)
    # A graph of its own, values fed: works whether the caller runs eager or graph mode, and
    # the values never enter a GraphDef (2 GB cap).
    with tf.Graph().as_default():
        feeds = {name: tf.compat.v1.placeholder(tf.as_dtype(np.asarray(tensors[name]).dtype),
                                                np.shape(tensors[name])) for name in names}
        save = tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                                 tensors=[feeds[name] for name in names])
        with tf.compat.v1.Session() as session:
            session.run(save, {feeds[name]: tensors[name] for name in names})
    if state_file:
        write_state_file(os.path.dirname(prefix), [os.path.basename(prefix)])


def write_state_file(directory, names):
    """TF's ``checkpoint`` file naming ``names`` (the newest last), relative as tf.train.Saver writes them,
    so the directory survives a move or rename."""
    lines = [f'model_checkpoint_path: "{names[-1]}"'] + [f'all_model_checkpoint_paths: "{name}"' for name in names]
    with atomic_write(os.path.join(directory, "checkpoint")) as f:
        f.write("\n".join(lines) + "\n")


def _tokenizer_files(directory, vocab_dir, vocab_size, notes):
    """vocab.txt (byte for byte) and our tokenizer_config.json; returns the settings, or None without a vocab."""
    if vocab_dir is None:
        notes.append("no vocab.txt in the transformers directories: put the vocab the model was trained "
                     "with beside the checkpoint before building a dataset or pretraining")
        return None
    vocab_file = os.path.join(vocab_dir, VOCAB_NAME)
    lines = len(VocabFile(vocab_file))
    if lines != vocab_size:
        raise UserInputError(f"{vocab_file}: {lines} lines, but the model's word embeddings have {vocab_size} rows")
    recorded = read_tokenizer_config(vocab_dir)
    settings = {"vocab_file": vocab_file, "tokenizer_type": recorded.get("tokenizer_type", "wordpiece"),
                "do_lower_case": bool(recorded.get("do_lower_case", False))}
    shutil.copyfile(vocab_file, os.path.join(directory, VOCAB_NAME))
    write_json(os.path.join(directory, "tokenizer_config.json"),
               tokenizer_config(settings["tokenizer_type"], settings["do_lower_case"]))
    return settings


def _pretrain_config(disc, gen, untied_generator_embeddings, tokenizer):
    """The sizes, keyed as run_pretraining.py's pretrain_config.json keys them."""
    d = disc.sizes
    record = {
        "converted_from": {"discriminator": os.path.abspath(disc.path),
                           "generator": os.path.abspath(gen.path) if gen else None},
        "vocab_size": d["vocab_size"], "embedding_size": d["embedding_size"],
        "max_position_embeddings": d["max_position_embeddings"], "hidden_size": d["hidden_size"],
        "num_hidden_layers": d["num_hidden_layers"], "num_attention_heads": d["num_attention_heads"],
        "intermediate_size": d["intermediate_size"], "untied_generator": True,
        "untied_generator_embeddings": untied_generator_embeddings,
        "bert_config": d, "generator_bert_config": gen.sizes if gen else None,
    }
    if gen:
        record["generator_hidden_size"] = gen.sizes["hidden_size"] / d["hidden_size"]
        record["generator_layers"] = gen.sizes["num_hidden_layers"] / d["num_hidden_layers"]
    if tokenizer:
        record.update(tokenizer_type=tokenizer["tokenizer_type"], do_lower_case=tokenizer["do_lower_case"])
    return record


def _verify(prefix, arch, disc, gen, tensors, dropped, seed):
    """TF forward pass of the written checkpoint vs the transformers models (convert.parity)."""
    import torch

    from convert import parity
    from convert.checkpoint import CheckpointVariables
    from convert.tf_reference import ReferenceElectra

    generator = None
    if gen is not None:
        generator = gen.model
        if any(label.startswith("generator") for _, _, label in dropped):
            # Compare with the generator as written: the weights it lost replaced by the kept ones.
            state = generator.state_dict()
            with torch.no_grad():
                for name, _, key, transpose in generator_entries(arch):
                    state[key].copy_(torch.from_numpy(tensors[name].T if transpose else tensors[name]))
    results, seed = parity.check(ReferenceElectra(CheckpointVariables(prefix), arch), disc.model, generator,
                                 seed=seed)
    failed = [r.name for r in results if not r.ok]
    if failed:
        errors = ", ".join(f"{r.name} {r.error:.2e}" for r in results if not r.ok)
        raise UserInputError(f"parity check failed (seed {seed}, tolerance {parity.TOLERANCE:g}): {errors}; "
                             "nothing written")
    return {"seed": seed, "tolerance": parity.TOLERANCE, "max_relative_error": {r.name: r.error for r in results},
            "text": parity.report(results, seed)}


def transformers_to_tf(discriminator_dir, generator_dir, tf_ckpt_prefix, untied_generator_embeddings=False,
                       overwrite=False, verify=True, seed=None, words=CLI_WORDS):
    """Write the checkpoint and its side files; return a report of what was written, tied and missing.

    ``tf_ckpt_prefix`` is the checkpoint prefix (``DIR/model.ckpt``); DIR is created whole, and
    replaced only with ``overwrite``. Prints nothing: the caller shows ``format_report(report)``.
    """
    disc = hf_directory.load(discriminator_dir, "discriminator", words["discriminator"], words)
    gen = hf_directory.load(generator_dir, "generator", words["generator"], words) if generator_dir else None
    arch = architecture(disc, gen, untied_generator_embeddings, words)
    out_dir = os.path.dirname(os.path.abspath(tf_ckpt_prefix))
    _check_output_dir(out_dir, [d.path for d in (disc, gen) if d], overwrite)
    tensors, dropped = map_weights(disc, gen, arch)

    notes = []
    if gen is None:
        notes.append("no generator directory: only the discriminator is written; a warm start from this checkpoint "
                     "builds a fresh generator at the configured size, which needs steps to catch up with the "
                     "trained discriminator before its replacements are hard")
    replaced = sorted({name for name, kept, lost in dropped if lost.startswith("generator") and
                       kept.startswith("discriminator")})
    if replaced:
        notes.append(f"the generator's embeddings differ from the discriminator's ({', '.join(replaced)}); upstream "
                     f"shares one table (tied), so the discriminator's are written and the generator's dropped; "
                     f"{words['untie']} to keep both")
    for name, kept, lost in dropped:
        if kept.startswith("generator"):  # the output layer untied from the input table (tie_word_embeddings off)
            notes.append(f"{lost} differs from {kept.split(' ', 1)[1]}; upstream scores against the input "
                         f"embeddings, so {name} is written from those")
    for d in (disc, gen):
        if d and d.stored_dtype not in ("", "float32"):
            notes.append(f"{d.which}: weights stored as {d.stored_dtype}, written as float32")

    tmp = temp_dir_beside(out_dir)
    try:
        prefix = os.path.join(tmp, os.path.basename(tf_ckpt_prefix))
        write_checkpoint(prefix, tensors)
        tokenizer = _tokenizer_files(tmp, hf_directory.vocab_source([disc.path, gen.path if gen else None]),
                                     disc.sizes["vocab_size"], notes)
        write_json(os.path.join(tmp, PRETRAIN_CONFIG_NAME),
                   _pretrain_config(disc, gen, untied_generator_embeddings, tokenizer))
        checked = _verify(prefix, arch, disc, gen, tensors, dropped, seed) if verify else None
        files = sorted(os.listdir(tmp))
        put_in_place(tmp, out_dir)
    finally:
        discard(tmp)

    def network(d):
        return {"source": d.path, "sizes": d.sizes,
                "parameters": sum(p.numel() for p in d.model.parameters())} if d else None

    return {
        "checkpoint": os.path.join(out_dir, os.path.basename(tf_ckpt_prefix)), "directory": out_dir,
        "files": files, "variables": {name: list(array.shape) for name, array in sorted(tensors.items())},
        "discriminator": network(disc), "generator": network(gen),
        "untied_generator_embeddings": untied_generator_embeddings, "embeddings_replaced": replaced,
        "tokenizer": tokenizer, "parity": checked, "notes": notes,
    }


def format_report(report):
    """The lines the command prints for a report of ``transformers_to_tf``."""
    lines = []
    for which in ("discriminator", "generator"):
        network = report[which]
        if network:
            lines.append(size_line(which, network["sizes"]))
            lines.append(f"  from {network['source']} ({network['parameters']:,} parameters)")
    embeddings = "generator/embeddings (untied)" if report["untied_generator_embeddings"] else "electra/embeddings"
    if report["generator"]:
        lines.append(f"generator embeddings: {embeddings}")
    tokenizer = report["tokenizer"]
    if tokenizer:
        lines.append(f"tokenizer: {tokenizer['vocab_file']} ({tokenizer['tokenizer_type']}, "
                     f"do_lower_case={tokenizer['do_lower_case']})")
    lines += [f"note: {note}" for note in report["notes"]]
    if report["parity"]:
        lines.append(report["parity"]["text"])
    lines.append(f"wrote {report['checkpoint']} ({len(report['variables'])} variables) and "
                 f"{', '.join(f for f in report['files'] if not f.startswith(os.path.basename(report['checkpoint'])))} "
                 f"in {report['directory']}")
    return "\n".join(lines)
