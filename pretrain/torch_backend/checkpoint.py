"""The torch backend's checkpoints: everything an exact resume needs, one file per step.

``<model_dir>/torch_checkpoints/step-<N>.pt`` (pretrain/layout.py), written under a temporary
name and renamed when complete (util.files.atomic_write), so a run killed mid-save leaves the
previous checkpoint as the newest. Nothing is named like TF's ``checkpoint`` state file or
``model.ckpt-N``. One file holds:

- ``model``: the ElectraPretrainer's state dict, transformers' names under ``discriminator.``
  and ``generator.`` (``ElectraForPreTraining`` / ``ElectraForMaskedLM`` keys after the prefix);
- ``tf_names``: each parameter's upstream TF variable name (and whether it is transposed), so
  the file converts and warm-starts without building the model first;
- ``optimizer`` (the ``adam_m``/``adam_v`` slots), ``scheduler`` (the schedule's position),
  ``scaler`` (fp16's loss scale), ``step`` and ``seed``;
- ``ranks``: per torchrun rank, its RNG states (torch CPU and CUDA, Python, numpy, the masking
  generator) and its data position (PretrainingBatches.state_dict()); empty in a checkpoint
  converted from a TF one (``converted_from`` names it), whose run draws afresh from there.

A resumed run restores all of it, so it continues exactly as an uninterrupted run would have.
Everything is stored as tensors and plain Python values and read with ``weights_only=True``.
"""
import os
import random

import numpy as np
import torch

from pretrain import layout
from util.errors import UserInputError
from util.files import atomic_write, make_dirs

FORMAT = 1


def rng_state(mask_generator):
    """This process's random states, as plain values and tensors."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch_cpu": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
             "masking": mask_generator.get_state()}
    if mask_generator.device.type == "cuda":
        state["torch_cuda"] = torch.cuda.get_rng_state(mask_generator.device)
    return state


def set_rng_state(state, mask_generator):
    torch.set_rng_state(state["torch_cpu"])
    random.setstate(_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    mask_generator.set_state(state["masking"])
    if "torch_cuda" in state and mask_generator.device.type == "cuda":
        torch.cuda.set_rng_state(state["torch_cuda"], mask_generator.device)


def _tuples(value):
    """random.setstate wants the tuples it gave; a saved state may come back with lists."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def save(model_dir, step, model, optimizer, scheduler, scaler, seed, tf_names, ranks, scaler_state=None,
         converted_from=None):
    """Write step-<step>.pt atomically; returns its path.

    A TF checkpoint converted to this format (convert/torch_tf.py) has no ranks (no torch RNG
    states or data position to restore), its loss scale as ``scaler_state`` and its prefix as
    ``converted_from``.
    """
    path = layout.torch_checkpoint_path(model_dir, step)
    make_dirs(os.path.dirname(path), "model dir")
    state = {"format": FORMAT, "step": step, "seed": seed, "model": model.state_dict(),
             "tf_names": {name: [tf, bool(transpose)] for name, (tf, transpose) in tf_names.items()},
             "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "scaler": scaler.state_dict() if scaler is not None else scaler_state, "world_size": len(ranks),
             "ranks": ranks}
    if converted_from:
        state["converted_from"] = converted_from
    with atomic_write(path, "wb") as f:
        torch.save(state, f)
    return path


def prune(model_dir, keep):
    """Remove all but the newest ``keep`` checkpoints (0 keeps every one), as TF's keep_checkpoint_max."""
    found = layout.torch_checkpoints(model_dir)
    for _, path in found[:-keep] if keep else []:
        os.remove(path)


def read(path):
    """The saved dict; a file that does not read is one line naming it."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a file cut short, another format, ...: say which file, not a traceback
        raise UserInputError(f"{path}: damaged torch checkpoint ({str(e).strip().splitlines()[0][:200]}); copy it "
                             "again, or remove it to resume from the one before") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserInputError(f"{path}: not a torch checkpoint of this toolkit (format {FORMAT})")
    return state


def restore(state, model, optimizer=None, scheduler=None, scaler=None):
    """Load what a run continues from; the per-rank states are left to the caller."""
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler") is not None:
        scaler.load_state_dict(state["scaler"])


def tf_arrays(state):
    """{TF variable name: float32 array} of the saved model, through the names it records."""
    arrays = {}
    for key, (tf, transpose) in state["tf_names"].items():
        array = state["model"][key].float().numpy()
        arrays[tf] = np.ascontiguousarray(array.T if transpose else array)
    return arrays


def checkpoint_variables(path):
    """The checkpoint's model variables as model.checkpoint_reader.ArrayVariables (upstream's names)."""
    from model.checkpoint_reader import ArrayVariables

    state = read(path)
    return ArrayVariables(path, tf_arrays(state), os.path.dirname(os.path.dirname(path)),
                          global_step=state["step"], has_optimizer_slots=True)
