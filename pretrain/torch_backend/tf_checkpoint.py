"""The torch model's weights (and Adam slots) as arrays under upstream's TF variable names, both ways.

TF-free: the arrays come from, and go to, whatever reads or writes TF checkpoints
(model/checkpoint_reader.CheckpointVariables, convert/to_tf, an npz). Names come from
``model.tf_variable_names``; a TF dense kernel is [in, out] where torch's Linear weight is
[out, in], so those are transposed. Slots are ``<variable>/adam_m`` and ``<variable>/adam_v``.
"""
import numpy as np
import torch

from model.checkpoint_reader import is_training_state
from pretrain.torch_backend.model import tf_variable_names
from util.errors import UserInputError

SLOTS = ("adam_m", "adam_v")


def _names_in(variables):
    """The variable names a dict, an npz or a CheckpointVariables holds."""
    if hasattr(variables, "all_names"):
        return set(variables.all_names)
    return set(variables.files if hasattr(variables, "files") else variables)


def _read(variables, name):
    return np.asarray(variables.get(name) if hasattr(variables, "all_names") else variables[name])


def load_tf_checkpoint_into(model, variables, optimizer=None, source="TF checkpoint"):
    """Copy every model variable (and, given ``optimizer``, the Adam slots present) into ``model``.

    ``variables`` maps TF names to arrays (a dict, an npz, or model.checkpoint_reader's
    CheckpointVariables). A missing or mis-shaped model variable, or a model variable the
    model has no place for, is a one-line UserInputError naming it.
    """
    names = tf_variable_names(model)
    held = _names_in(variables)
    params = dict(model.named_parameters())
    missing = sorted(tf for tf, _ in names.values() if tf not in held)
    unused = sorted(n for n in held - {tf for tf, _ in names.values()} if not is_training_state(n))
    if missing or unused:
        what = [f"missing {', '.join(missing[:3])}" if missing else "",
                f"not in this model {', '.join(unused[:3])}" if unused else ""]
        raise UserInputError(f"{source}: variables do not match the model: {'; '.join(w for w in what if w)}"
                             + (f" ({len(missing) + len(unused)} in all)" if len(missing) + len(unused) > 3 else ""))
    with torch.no_grad():
        for name, (tf, transpose) in names.items():
            param = params[name]
            array = _read(variables, tf)
            array = array.T if transpose else array
            if tuple(array.shape) != tuple(param.shape):
                raise UserInputError(f"{source}: variable {tf} has shape {list(_read(variables, tf).shape)}, "
                                     f"the model expects {list(param.shape[::-1] if transpose else param.shape)}")
            param.copy_(torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)))
            if optimizer is not None and all(f"{tf}/{slot}" in held for slot in SLOTS):
                state = optimizer.state[param]
                for slot in SLOTS:
                    value = _read(variables, f"{tf}/{slot}")
                    value = value.T if transpose else value
                    state[slot] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)).to(param.device)


def tf_checkpoint_arrays(model, optimizer=None):
    """{TF variable name: float32 array}, with ``<name>/adam_m``/``adam_v`` for every slot ``optimizer`` holds."""
    params = dict(model.named_parameters())
    arrays = {}
    for name, (tf, transpose) in tf_variable_names(model).items():
        param = params[name]
        # A copy, never a view of the live tensor: the arrays must keep this moment's values.
        to_array = lambda t: np.array(t.detach().float().cpu().numpy().T if transpose  # noqa: E731
                                      else t.detach().float().cpu().numpy(), order="C", copy=True)
        arrays[tf] = to_array(param)
        state = optimizer.state.get(param, {}) if optimizer is not None else {}
        for slot in SLOTS:
            if slot in state:
                arrays[f"{tf}/{slot}"] = to_array(state[slot])
    return arrays
