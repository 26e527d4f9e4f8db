"""A model directory of one backend as one the other backend resumes: torch ⇄ TF, Adam slots and step included.

``torch_to_tf``: the newest ``torch_checkpoints/step-<N>.pt`` becomes ``model.ckpt-N`` (TF-v1,
upstream's variable names) holding the weights, their ``adam_m``/``adam_v`` slots, ``global_step``
N and the loss scale, with TF's ``checkpoint`` state file, so ``run_pretraining.py --backend tf``
(or upstream's code) resumes at step N. ``tf_to_torch``: the newest ``model.ckpt-N`` with its slots
becomes ``torch_checkpoints/step-N.pt``, so ``--backend torch`` resumes at step N.

What carries over exactly: every weight, every Adam slot, the step and so the schedule, and the
loss scale. What cannot: the random states and the data position, since the two backends draw
masks, dropout and the shuffle from different generators. The continued run draws afresh from
the step reached, which is what the TF backend does at every restart (its input pipeline starts
again); a torch run continued from a converted TF checkpoint says so in its log.

The output is a new model directory (config, vocab and tokenizer files copied beside the
checkpoint), or the source directory itself, where the converted checkpoint is added beside the
original and each backend then continues from its own (pretrain/prepare.check_model_dir).

The torch network, its optimizer and schedule are built from the run's pretrain_config.json and
restored through the same code a resumed torch run uses, and the arrays pass through
pretrain/torch_backend/tf_checkpoint.py, the one map between the two layouts. TensorFlow writes
and reads the TF side; every array written is read back and compared before the output is
renamed into place.
"""
import contextlib
import os
import shutil

import numpy as np

from pretrain import layout
from util.errors import UserInputError
from util.files import put_in_place, read_json, temp_dir_beside

SIDE_FILES = (layout.CONFIG_NAME, "vocab.txt", "tokenizer_config.json")
SLOTS = ("adam_m", "adam_v")
# model/optimization.DynamicLossScale's variables and their initial values; torch's GradScaler
# keeps the same two numbers (scale, and good steps as _growth_tracker) under the same rule.
LOSS_SCALE, GOOD_STEPS, INITIAL_SCALE = "loss_scale/scale", "loss_scale/good_steps", 2.0 ** 15


def read_model_config(model_dir):
    """The PretrainingConfig a run in ``model_dir`` was trained with, its vocab attached."""
    from configure_pretraining import HPARAMS, PretrainingConfig
    from util.tokenization import KoTokenizer

    path = os.path.join(model_dir, layout.CONFIG_NAME)
    if not os.path.isfile(path):
        raise UserInputError(f"{model_dir}: no {layout.CONFIG_NAME}; the conversion builds the network and its "
                             "optimizer from the config run_pretraining.py writes there")
    recorded = read_json(path, "pretraining config")
    hparams = {key: value for key, value in recorded.items() if key in HPARAMS and key != "model_dir"}
    config = PretrainingConfig(recorded.get("model_name", "converted"), recorded.get("data_dir") or model_dir,
                               source=path, model_dir=model_dir, **hparams)
    vocab = os.path.join(model_dir, "vocab.txt")
    if not os.path.isfile(vocab):
        raise UserInputError(f"{model_dir}: no vocab.txt beside the checkpoint (run_pretraining.py copies it there)")
    config.attach_vocab(KoTokenizer.from_vocab(vocab, config.tokenizer_type, config.do_lower_case))
    return config


def _training_objects(config):
    """(model, optimizer, scheduler) as a torch run of ``config`` builds them, on the CPU."""
    from pretrain.torch_backend.model import ElectraPretrainer
    from pretrain.torch_backend.optim import build_optimizer, build_scheduler

    try:
        model = ElectraPretrainer(config)
    except ValueError as e:
        raise UserInputError(f"{config._source}: {e}") from None
    optimizer = build_optimizer(model, config)
    return model, optimizer, build_scheduler(optimizer, config)


def _check_output(out_dir, source_dir, overwrite, flag):
    """A new (or empty, or --overwrite) directory, never one holding the source; or the source itself."""
    out_dir = os.path.abspath(out_dir)
    if out_dir == os.path.abspath(source_dir):
        return True
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserInputError(f"{flag} {out_dir} is a file, not a directory")
    inside = os.path.commonpath([out_dir, os.path.realpath(source_dir)])
    if inside == out_dir:
        raise UserInputError(f"{flag} {out_dir} holds the source {source_dir}; write elsewhere, or into the source "
                             "directory itself to add the converted checkpoint beside the original")
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not overwrite:
        raise UserInputError(f"{out_dir}: already exists and is not empty; pass --overwrite to replace it")
    return False


def _copy_side_files(source_dir, directory):
    for name in SIDE_FILES:
        if os.path.isfile(os.path.join(source_dir, name)):
            shutil.copyfile(os.path.join(source_dir, name), os.path.join(directory, name))


@contextlib.contextmanager
def _staging(out_dir):
    """A temporary directory beside ``out_dir``, removed whatever happens."""
    tmp = temp_dir_beside(out_dir)
    try:
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)


def _newest_torch_checkpoint(source):
    """(checkpoint file, model dir) of a torch model directory or a step-<N>.pt file."""
    source = os.fspath(source).rstrip("/") or "/"
    if source.endswith(".pt") and os.path.isfile(source):
        directory = os.path.dirname(os.path.abspath(source))
        if os.path.basename(directory) == layout.TORCH_CHECKPOINT_DIR:
            directory = os.path.dirname(directory)
        return source, directory
    found = layout.torch_checkpoints(source)
    if not found:
        raise UserInputError(f"{source}: no torch checkpoint ({layout.TORCH_CHECKPOINT_DIR}/step-<N>.pt); "
                             "--to_tf_model_dir converts a model directory of run_pretraining.py --backend torch")
    return found[-1][1], source


def torch_arrays(path, model_dir):
    """(config, step, {TF name: array}) of a torch checkpoint: weights, every weight's Adam slots (zeros
    where the optimizer holds none: a variable no gradient reached, as TF initialises it),
    ``global_step`` and the loss scale."""
    from pretrain.torch_backend import checkpoint
    from pretrain.torch_backend.tf_checkpoint import tf_checkpoint_arrays

    state = checkpoint.read(path)
    config = read_model_config(model_dir)
    model, optimizer, _ = _training_objects(config)
    try:
        checkpoint.restore(state, model, optimizer)
    except (RuntimeError, ValueError, KeyError) as e:
        raise UserInputError(f"{path}: does not fit the network {config._source} describes "
                             f"({str(e).strip().splitlines()[0][:200]})") from None
    arrays = tf_checkpoint_arrays(model, optimizer)
    for name in [n for n in arrays if not n.endswith(tuple(f"/{s}" for s in SLOTS))]:
        for slot in SLOTS:
            arrays.setdefault(f"{name}/{slot}", np.zeros_like(arrays[name]))
    scaler = state.get("scaler") or {}
    arrays["global_step"] = np.asarray(state["step"], np.int64)
    arrays[LOSS_SCALE] = np.asarray(scaler.get("scale", INITIAL_SCALE), np.float32)
    arrays[GOOD_STEPS] = np.asarray(scaler.get("_growth_tracker", 0), np.int64)
    return config, state["step"], arrays


def torch_to_tf(source, out_dir, overwrite=False, log=print):
    """Write the newest torch checkpoint of ``source`` as ``out_dir/model.ckpt-N``; returns its prefix."""
    from convert.to_tf import write_checkpoint, write_state_file

    path, source_dir = _newest_torch_checkpoint(source)
    beside = _check_output(out_dir, source_dir, overwrite, "--to_tf_model_dir")
    out_dir = os.path.abspath(out_dir)
    config, step, arrays = torch_arrays(path, source_dir)
    name = f"model.ckpt-{step}"
    log(f"checkpoint: {path} (step {step}, torch backend)")
    held = sorted(f for f in os.listdir(out_dir) if f.endswith(".index")) if beside else []
    if held:
        raise UserInputError(f"{out_dir} already holds TF checkpoints ({', '.join(held[:3])}); write the conversion "
                             "to another directory")
    with _staging(out_dir) as tmp:
        write_checkpoint(os.path.join(tmp, name), arrays, state_file=not beside)
        _verify_tf(os.path.join(tmp, name), arrays)
        if beside:
            for file in sorted(os.listdir(tmp), key=lambda f: f.endswith(".index")):  # the index last
                os.replace(os.path.join(tmp, file), os.path.join(out_dir, file))
            write_state_file(out_dir, [name])  # written last: from here on TF finds the checkpoint
        else:
            _copy_side_files(source_dir, tmp)
            put_in_place(tmp, out_dir)
    slots = sum(n.endswith("/adam_m") for n in arrays)
    log(f"wrote {os.path.join(out_dir, name)}: {slots} variables with their adam_m/adam_v slots, global_step {step}"
        + ("" if beside else f"; {', '.join(f for f in SIDE_FILES if os.path.isfile(os.path.join(out_dir, f)))}"))
    log(f"continue it with: python run_pretraining.py --backend tf --model_name {out_dir} ... "
        "(num_train_steps above the step)")
    return os.path.join(out_dir, name)


def _verify_tf(prefix, arrays):
    """Every array read back by TF's own reader, bit for bit, and nothing else in the file."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    held = reader.get_variable_to_shape_map()
    problems = sorted(set(held) ^ set(arrays))
    problems += [name for name in sorted(arrays) if name in held and not np.array_equal(reader.get_tensor(name),
                                                                                       arrays[name])]
    if problems:  # a bug here, not user input
        raise AssertionError(f"{prefix}: written and read back differ at {', '.join(problems[:5])}")


def tf_to_torch(source, out_dir, overwrite=False, log=print):
    """Write the newest TF checkpoint of ``source`` as ``out_dir/torch_checkpoints/step-N.pt``; returns its path."""
    from convert.checkpoint import CheckpointVariables, resolve_checkpoint
    from pretrain.torch_backend import checkpoint
    from pretrain.torch_backend.model import tf_variable_names
    from pretrain.torch_backend.tf_checkpoint import load_tf_checkpoint_into

    prefix, source_dir = resolve_checkpoint(source)
    variables = CheckpointVariables(prefix)
    slots = [n for n in variables.training_state if n.endswith("/adam_m")]
    if variables.global_step is None or not slots:
        raise UserInputError(f"{prefix}: no {'global_step' if variables.global_step is None else 'Adam slots'}, so "
                             "nothing to resume (a released checkpoint holds the weights only); warm-start a torch "
                             f"run from it with --hparams '{{\"saved_model\": \"{source}\"}}' instead")
    step = variables.global_step
    beside = _check_output(out_dir, source_dir, overwrite, "--to_torch_model_dir")
    out_dir = os.path.abspath(out_dir)
    if beside and layout.torch_checkpoints(out_dir):
        raise UserInputError(f"{out_dir} already holds torch checkpoints; write the conversion to another directory")
    log(f"checkpoint: {prefix} (global_step {step}, TF)")
    config = read_model_config(source_dir)
    model, optimizer, scheduler = _training_objects(config)
    arrays = {name: variables.get(name) for name in list(variables.shapes) + list(variables.training_state)}
    load_tf_checkpoint_into(model, arrays, optimizer, source=prefix)
    # The schedule's position: the next step's rate from this run's schedule, as a resumed torch run sets it.
    scheduler.last_epoch = step
    for group, rate, base in zip(optimizer.param_groups, scheduler.lr_lambdas, scheduler.base_lrs):
        group["lr"] = base * rate(step)
    scaler_state = None
    if LOSS_SCALE in arrays:  # what GradScaler.state_dict() holds, with TF's DynamicLossScale rule
        scaler_state = {"scale": float(arrays[LOSS_SCALE]), "growth_factor": 2.0, "backoff_factor": 0.5,
                        "growth_interval": 2000, "_growth_tracker": int(arrays.get(GOOD_STEPS, 0))}
    seed = config.seed
    if seed is None:  # the TF run drew its own: the continuation needs one for its masks and dropout
        seed = int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF
        log(f"seed {seed} for the continuation (the TF run's config sets none)")
    with _staging(out_dir) as tmp:
        path = checkpoint.save(out_dir if beside else tmp, step, model, optimizer, scheduler, None, seed,
                               tf_variable_names(model), [], scaler_state=scaler_state, converted_from=prefix)
        _verify_torch(path, config, arrays, step)
        if not beside:
            _copy_side_files(source_dir, tmp)
            put_in_place(tmp, out_dir)
    path = layout.torch_checkpoint_path(out_dir, step)
    log(f"wrote {path}: {len(variables.shapes)} variables, {len(slots)} with their adam_m/adam_v slots, step {step}")
    log(f"continue it with: python run_pretraining.py --backend torch --model_name {out_dir} ... "
        "(num_train_steps above the step)")
    return path


def _verify_torch(path, config, arrays, step):
    """The written checkpoint, restored as a resumed run restores it, holds the TF checkpoint's weights and
    Adam slots bit for bit, and its step."""
    from model.checkpoint_reader import is_training_state
    from pretrain.torch_backend import checkpoint
    from pretrain.torch_backend.tf_checkpoint import tf_checkpoint_arrays

    state = checkpoint.read(path)
    model, optimizer, _ = _training_objects(config)
    checkpoint.restore(state, model, optimizer)
    restored = tf_checkpoint_arrays(model, optimizer)
    expected = {name for name in arrays if not is_training_state(name) or name.endswith(("/adam_m", "/adam_v"))}
    problems = sorted(set(restored) ^ expected)
    problems += [name for name in sorted(restored) if name in arrays and not np.array_equal(restored[name],
                                                                                             arrays[name])]
    if problems or state["step"] != step:  # a bug here, not user input
        raise AssertionError(f"{path}: written and read back differ at {', '.join(problems[:5]) or 'the step'}")
