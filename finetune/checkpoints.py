"""``checkpoint-N/`` directories: writing them every ``save_steps``, the keep-limit, resuming.

As in both originals, a checkpoint is a transformers directory of the model at step N, and
with ``save_optimizer: true`` it also holds ``optimizer.pt`` and ``scheduler.pt``. Ours adds
the tokenizer (so a checkpoint loads on its own), ``finetune_config.json`` and
``trainer_state.json`` (step, epoch, position in the epoch, the evaluations so far). The
newest checkpoint always keeps the optimizer, scheduler and RNG states, whatever
``save_optimizer`` says, because a killed run resumes from it; older ones drop them unless
``save_optimizer`` is true. ``save_total_limit`` keeps the newest N (0 keeps every one, as
the originals do) plus the best ones. Each checkpoint is written under a temporary name and
renamed when complete, so a kill mid-write leaves the previous checkpoint as the newest.
"""
import json
import logging
import os
import random
import re
import shutil

import numpy as np
import torch

from util.errors import UserInputError
from util.files import put_in_place, temp_dir_beside, write_json

logger = logging.getLogger(__name__)

PREFIX = "checkpoint-"
STATE = "trainer_state.json"
OPTIMIZER, SCHEDULER, RNG, SCALER = "optimizer.pt", "scheduler.pt", "rng_state.pt", "scaler.pt"
RESUME_FILES = (OPTIMIZER, SCHEDULER, RNG, SCALER)
# Keys that change what training computes: a checkpoint made under other values is not resumed.
TRAINING_KEYS = ("task", "train_file", "model_name_or_path", "max_seq_len", "train_batch_size",
                 "gradient_accumulation_steps", "learning_rate", "num_train_epochs", "max_steps",
                 "warmup_proportion", "weight_decay", "adam_epsilon", "max_grad_norm", "seed", "do_reinit",
                 "group_by_length", "bf16", "fp16", "do_lower_case", "mecab", "hate_speech_input",
                 "text_column", "label_column", "label_list", "ner_format", "ner_char_tokens", "doc_stride",
                 "max_query_length", "max_train_examples", "dev_split", "split_seed")


def fingerprint(config):
    return {k: config.get(k) for k in TRAINING_KEYS if k in config}


def list_checkpoints(output_dir):
    """``[(step, path)]`` of the complete checkpoints in ``output_dir``, oldest first."""
    if not os.path.isdir(output_dir):
        return []
    found = []
    for name in os.listdir(output_dir):
        match = re.fullmatch(re.escape(PREFIX) + r"(\d+)", name)
        path = os.path.join(output_dir, name)
        if match and os.path.isfile(os.path.join(path, STATE)):
            found.append((int(match.group(1)), path))
    return sorted(found)


def save(output_dir, step, model, tokenizer, config, state, optimizer, scheduler, scaler=None):
    """Write ``checkpoint-<step>/`` atomically; returns its path."""
    path = os.path.join(output_dir, f"{PREFIX}{step}")
    tmp = temp_dir_beside(path)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(os.path.join(tmp, "finetune_config.json"), config.as_dict())
        torch.save(optimizer.state_dict(), os.path.join(tmp, OPTIMIZER))
        torch.save(scheduler.state_dict(), os.path.join(tmp, SCHEDULER))
        torch.save(rng_state(), os.path.join(tmp, RNG))
        if scaler is not None:
            torch.save(scaler.state_dict(), os.path.join(tmp, SCALER))
        write_json(os.path.join(tmp, STATE), dict(state, step=step, fingerprint=fingerprint(config)))
        from convert.model_card import write_finetuned_card

        # A checkpoint is a model someone may hand on, so it carries a card like best_model/.
        write_finetuned_card(tmp, run_dir=output_dir, name=f"{PREFIX}{step}", step=step)
        put_in_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("saved %s", path)
    return path


def tidy(output_dir, keep, protected, save_optimizer):
    """Apply the keep-limit and drop resume files from all but the newest checkpoint."""
    found = list_checkpoints(output_dir)
    if not found:
        return
    newest = found[-1][0]
    kept = {s for s, _ in found[-keep:]} if keep > 0 else {s for s, _ in found}
    kept |= set(protected) | {newest}
    for step, path in found:
        if step not in kept:
            shutil.rmtree(path, ignore_errors=True)
            logger.info("removed %s (save_total_limit %d)", path, keep)
        elif step != newest:
            names = (RNG, SCALER) if save_optimizer else RESUME_FILES
            for name in names:
                if os.path.exists(os.path.join(path, name)):
                    os.remove(os.path.join(path, name))


def remove_all(output_dir):
    for _, path in list_checkpoints(output_dir):
        shutil.rmtree(path, ignore_errors=True)


def read_state(path):
    with open(os.path.join(path, STATE), encoding="utf-8") as f:
        return json.load(f)


def check_resumable(path, state, config):
    """One-line error when the checkpoint was made under other training settings."""
    recorded = state.get("fingerprint", {})
    now = fingerprint(config)
    differ = [k for k in now if k in recorded and recorded[k] != now[k]]
    if differ:
        key = differ[0]
        raise UserInputError(
            f"{config.where(key)}: {path} was trained with {key}={recorded[key]!r} but the config says "
            f"{now[key]!r}; set resume: false to start over, or use another ckpt_dir")
    missing = [n for n in (OPTIMIZER, SCHEDULER, RNG) if not os.path.isfile(os.path.join(path, n))]
    if missing:
        raise UserInputError(f"{path}: cannot resume, {', '.join(missing)} missing; set resume: false to start over")


def load_training_states(path, optimizer, scheduler, scaler=None, rng=True):
    """Load what ``save`` wrote next to the weights into the live objects."""
    optimizer.load_state_dict(torch.load(os.path.join(path, OPTIMIZER), map_location="cpu", weights_only=False))
    scheduler.load_state_dict(torch.load(os.path.join(path, SCHEDULER), map_location="cpu", weights_only=False))
    if scaler is not None and os.path.isfile(os.path.join(path, SCALER)):
        scaler.load_state_dict(torch.load(os.path.join(path, SCALER), weights_only=False))
    if rng:
        set_rng_state(torch.load(os.path.join(path, RNG), weights_only=False))


def has_optimizer_states(directory):
    """The originals resume from ``optimizer.pt``/``scheduler.pt`` in ``model_name_or_path``."""
    return all(os.path.isfile(os.path.join(directory, n)) for n in (OPTIMIZER, SCHEDULER))


def read_rng(path):
    return torch.load(os.path.join(path, RNG), weights_only=False)


def rng_state():
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def clean_partial(output_dir):
    """Remove checkpoint directories a killed run left half-written (still under a temp name)."""
    if not os.path.isdir(output_dir):
        return
    for name in os.listdir(output_dir):
        if name.startswith("." + PREFIX) and name.endswith(".tmp"):
            shutil.rmtree(os.path.join(output_dir, name), ignore_errors=True)


def resume_point(config, output_dir, is_main=True):
    """The newest checkpoint to resume from, or None; ``resume: false`` removes old ones."""
    if not config.do_train or config.do_nni:
        return None
    if is_main:
        clean_partial(output_dir)
    found = list_checkpoints(output_dir)
    if not found:
        return None
    if not config.resume:
        logger.warning("resume is false: removing %d checkpoint(s) of an earlier run in %s", len(found), output_dir)
        if is_main:
            remove_all(output_dir)
        return None
    path = found[-1][1]
    check_resumable(path, read_state(path), config)
    return path
