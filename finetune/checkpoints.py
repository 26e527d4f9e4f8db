"""``checkpoint-N/`` directories: writing them every ``save_steps``, the keep-limit, resuming.

As in both originals, a checkpoint is a transformers directory of the model at step N, and
with ``save_optimizer: true`` it also holds ``optimizer.pt`` and ``scheduler.pt``. Ours adds
the tokenizer (so a checkpoint loads on its own), ``finetune_config.json`` and
``trainer_state.json`` (step, epoch, position in the epoch, the evaluations so far). The
newest checkpoint always keeps the optimizer, scheduler and RNG states, whatever
``save_optimizer`` says, because a killed run resumes from it; older ones drop them unless
``save_optimizer`` is true, which keeps every checkpoint resumable. ``save_total_limit`` keeps the newest N (0 keeps every one, as
the originals do) plus the best ones. Each checkpoint is written under a temporary name and
renamed when complete, so a kill mid-write leaves the previous checkpoint as the newest.

A checkpoint damaged after it was written (a file cut short by an interrupted copy, garbage
on disk) is found before anything is loaded: every file is read through its own format's
checks (the zip CRCs of the ``.pt`` files, the safetensors header, the JSON). The run then
resumes from the newest intact checkpoint that still has its optimizer state, with a note
naming the damaged file, and writes the damaged one again when it gets there; when none is
left it stops with one line naming the file.
"""
import json
import logging
import os
import random
import re
import shutil
import zipfile

import numpy as np
import torch

from util.errors import UserInputError
from util.files import discard, put_in_place, temp_dir_beside, write_json

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


WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


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
        discard(tmp)
        raise
    logger.info("saved %s", path)
    return path


def tidy(output_dir, keep, protected, save_optimizer, newest=None):
    """Apply the keep-limit and drop resume files from all but the newest checkpoint.

    ``newest``: the step just saved. Checkpoints past it are damaged ones a resume fell back
    from (``newest_intact``); they are left alone until the run writes them again.
    """
    found = [(s, p) for s, p in list_checkpoints(output_dir) if newest is None or s <= newest]
    if not found:
        return
    newest = found[-1][0]
    kept = {s for s, _ in found[-keep:]} if keep > 0 else {s for s, _ in found}
    kept |= set(protected) | {newest}
    for step, path in found:
        if step not in kept:
            shutil.rmtree(path, ignore_errors=True)
            logger.info("removed %s (save_total_limit %d)", path, keep)
        elif step != newest and not save_optimizer:
            # With save_optimizer every checkpoint keeps all it needs to be resumed (the RNG and
            # scaler states are a few KB), so one can stand in for a damaged newer one.
            for name in RESUME_FILES:
                if os.path.exists(os.path.join(path, name)):
                    os.remove(os.path.join(path, name))


def remove_all(output_dir):
    for _, path in list_checkpoints(output_dir):
        shutil.rmtree(path, ignore_errors=True)


def read_state(path):
    with open(os.path.join(path, STATE), encoding="utf-8") as f:
        return json.load(f)


def _torch_file_damage(path):
    """Why a file torch.save wrote does not read back, or None. torch.save writes a zip archive
    with a CRC per member: reading every member checks them all, without unpickling anything."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        return f"not a complete PyTorch file: {e}"
    return f"member {bad} fails its CRC" if bad else None


def _json_file_damage(path):
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except json.JSONDecodeError as e:
        return f"malformed JSON at line {e.lineno} ({e.msg})"
    except UnicodeDecodeError as e:
        return f"not UTF-8 ({e.reason} at byte {e.start})"
    except OSError as e:
        return f"cannot read ({e.strerror})"
    return None if isinstance(value, dict) else "not a JSON object"


def _safetensors_damage(path):
    from safetensors import SafetensorError, safe_open

    try:
        # The header lists every tensor's byte range; a file that does not cover them all fails here.
        with safe_open(path, framework="pt") as f:
            f.keys()
    except (SafetensorError, OSError) as e:
        return (str(e).strip().splitlines() or [type(e).__name__])[0]
    return None


def damaged_file(path):
    """(file, reason) of the first file of checkpoint ``path`` that does not read, or None."""
    checks = [(STATE, _json_file_damage), ("config.json", _json_file_damage)]
    checks += [(name, _torch_file_damage) for name in RESUME_FILES + ("pytorch_model.bin",)]
    checks += [("model.safetensors", _safetensors_damage)]
    for name, check in checks:
        file = os.path.join(path, name)
        if os.path.isfile(file):
            reason = check(file)
            if reason:
                return file, reason
    if not any(os.path.isfile(os.path.join(path, name)) for name in WEIGHT_FILES):
        return os.path.join(path, WEIGHT_FILES[0]), "missing"
    return None


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


def _load(path, name, **kwargs):
    """torch.load of one resume file; a file that does not read is one line naming it."""
    file = os.path.join(path, name)
    reason = _torch_file_damage(file)
    if reason:
        raise UserInputError(f"{file}: damaged ({reason}); copy it again, or set resume: false to start over")
    return torch.load(file, weights_only=False, **kwargs)


def load_training_states(path, optimizer, scheduler, scaler=None, rng=True):
    """Load what ``save`` wrote next to the weights into the live objects."""
    optimizer.load_state_dict(_load(path, OPTIMIZER, map_location="cpu"))
    scheduler.load_state_dict(_load(path, SCHEDULER, map_location="cpu"))
    if scaler is not None and os.path.isfile(os.path.join(path, SCALER)):
        scaler.load_state_dict(_load(path, SCALER))
    if rng:
        set_rng_state(_load(path, RNG))


def has_optimizer_states(directory):
    """The originals resume from ``optimizer.pt``/``scheduler.pt`` in ``model_name_or_path``."""
    return all(os.path.isfile(os.path.join(directory, n)) for n in (OPTIMIZER, SCHEDULER))


def read_rng(path):
    return _load(path, RNG)


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
    path = newest_intact(found, output_dir, is_main)
    check_resumable(path, read_state(path), config)
    return path


def newest_intact(found, output_dir, is_main=True):
    """The newest of ``found`` that reads in full and can be resumed; a note when newer ones are
    damaged, one line naming the newest damaged file when none is left."""
    damaged = []
    for step, path in reversed(found):
        problem = damaged_file(path)
        if problem:
            damaged.append(problem)
            continue
        if not damaged:
            return path  # the newest, intact: check_resumable says what it may lack
        if all(os.path.isfile(os.path.join(path, n)) for n in (OPTIMIZER, SCHEDULER, RNG)):
            if is_main:
                file, reason = damaged[0]
                more = f" (and {len(damaged) - 1} newer checkpoint(s))" if len(damaged) > 1 else ""
                logger.warning("note: %s is damaged (%s)%s; resuming from %s, the newest intact checkpoint, "
                               "and writing the later ones again", file, reason, more, path)
            return path
    file, reason = damaged[0]
    raise UserInputError(
        f"{file}: damaged ({reason}), and no older checkpoint in {output_dir} is intact with its optimizer "
        "state; copy the file again, or set resume: false to start over (save_optimizer: true keeps older "
        "checkpoints resumable)")
