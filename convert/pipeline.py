"""One conversion: checkpoint -> discriminator dir, generator dir, ONNX file, parity report.

The checkpoint is a TF-v1 one or the torch backend's (convert/checkpoint.open_checkpoint reads
either into upstream's variable names); from there on the conversion is one code path, and only
the parity reference differs: TF ops for a TF checkpoint, the torch backend's network for a
torch one.

Everything is written under temporary names beside the targets and renamed into place
only after the variables checked out and the parity check passed, so a failed or
interrupted conversion leaves no output a later stage could take as complete.
"""
import os

from util.errors import UserInputError
from util.files import discard, put_in_place, temp_dir_beside


def _check_target(path, overwrite, what, flag, is_dir=True):
    """Refuse an output in the way (unless --overwrite), and one of the wrong kind even with it:
    --overwrite replaces an old output, never a file where a directory goes or the reverse."""
    if not path or not os.path.exists(path):
        return
    if is_dir and not os.path.isdir(path):
        raise UserInputError(f"{flag} {path} is a file, not a directory")
    if not is_dir and os.path.isdir(path):
        raise UserInputError(f"{flag} {path} is a directory, not a file")
    if not overwrite and (not is_dir or os.listdir(path)):
        raise UserInputError(f"{path}: {what} already exists; pass --overwrite to replace it")


def size_line(name, cfg):
    return (f"{name}: hidden {cfg['hidden_size']}, layers {cfg['num_hidden_layers']}, heads "
            f"{cfg['num_attention_heads']}, intermediate {cfg['intermediate_size']}, embedding "
            f"{cfg['embedding_size']}, vocab {cfg['vocab_size']}, positions {cfg['max_position_embeddings']}, "
            f"act {cfg['hidden_act']}")


def convert_checkpoint(tf_ckpt_path, pt_discriminator_path, pt_generator_path=None, onnx_path=None,
                       verify=True, config_file=None, vocab_dir=None, num_attention_heads=None,
                       generator_num_attention_heads=None, hidden_act=None, do_lower_case=None,
                       tokenizer_type=None, overwrite=False, seed=None, log=print):
    """Convert; returns the parity results (empty when verify is False)."""
    from convert import checkpoint, parity, to_transformers

    _check_target(pt_discriminator_path, overwrite, "discriminator directory", "--pt_discriminator_path")
    _check_target(pt_generator_path, overwrite, "generator directory", "--pt_generator_path")
    _check_target(onnx_path, overwrite, "ONNX file", "--onnx_path", is_dir=False)
    targets = [p for p in (pt_discriminator_path, pt_generator_path, onnx_path) if p]
    if len({os.path.abspath(p) for p in targets}) != len(targets):
        raise UserInputError("--pt_discriminator_path, --pt_generator_path and --onnx_path must differ")

    source = checkpoint.open_checkpoint(tf_ckpt_path, log)
    prefix, model_dir, variables = source.prefix, source.model_dir, source.variables
    step = f" (global_step {variables.global_step})" if variables.global_step is not None else ""
    log(f"checkpoint: {prefix}{step}" + (" (torch backend)" if source.kind == "torch" else ""))
    pretrain_config, config_path = checkpoint.find_pretrain_config(model_dir, config_file)
    run_state = unfinished_run(prefix, model_dir, variables.global_step, pretrain_config)
    if run_state["warning"]:
        log(run_state["warning"])
    arch = checkpoint.describe(variables, pretrain_config, config_path, num_attention_heads,
                               generator_num_attention_heads, hidden_act)
    log(f"sizes from {arch.source}")
    for note in arch.notes:
        log(f"note: {note}")
    if pt_generator_path and arch.generator is None:
        raise UserInputError(f"{prefix}: the checkpoint holds no generator (no generator_predictions/*); "
                             "drop --pt_generator_path")
    to_transformers.check_variables(variables, arch)
    log(size_line("discriminator", arch.discriminator))
    if arch.generator:
        log(size_line("generator", arch.generator))

    vocab_path = vocab_dir or model_dir
    if vocab_dir is None and not os.path.isfile(os.path.join(model_dir, "vocab.txt")):
        raise UserInputError(f"{model_dir}: no vocab.txt beside the checkpoint; pass --vocab_dir")
    if vocab_dir is not None:  # the rows are the model dir's vocab's: another of the same size would fit them
        from util.tokenization import resolve_vocab_path
        from util.vocab_identity import check_vocab_of_model, vocab_beside

        trained_with = vocab_beside(model_dir)
        if trained_with:
            check_vocab_of_model(resolve_vocab_path(vocab_dir)[0], trained_with,
                                 f"the checkpoint in {model_dir}", allow_extension=False)
    vocab_file, tokenizer_type, do_lower_case, pad_id = to_transformers.tokenizer_settings(
        vocab_path, pretrain_config, arch.discriminator["vocab_size"], do_lower_case, tokenizer_type)
    log(f"tokenizer: {vocab_file} ({tokenizer_type}, do_lower_case={do_lower_case})")

    temps = []
    try:
        outputs = []
        for which, target in (("discriminator", pt_discriminator_path), ("generator", pt_generator_path)):
            if not target:
                continue
            tmp = temp_dir_beside(target)
            temps.append(tmp)
            model = to_transformers.build_model(variables, arch, which, pad_id)
            to_transformers.save_model_dir(model, tmp, vocab_file, tokenizer_type, do_lower_case)
            outputs.append((which, tmp, target))
            log(f"{which}: converted {sum(p.numel() for p in model.parameters()):,} parameters")
        if onnx_path:
            from convert.onnx_export import export_onnx

            onnx_tmp = os.path.join(temp_dir_beside(onnx_path), "model.onnx")
            temps.append(os.path.dirname(onnx_tmp))
            export_onnx(_load(outputs[0][1], "discriminator"), onnx_tmp)
            outputs.append(("onnx", onnx_tmp, onnx_path))
            log("onnx: exported the discriminator (dynamic batch and sequence axes)")

        results = []
        if verify:
            saved = {which: tmp for which, tmp, _ in outputs}
            generator = _load(saved["generator"], "generator") if "generator" in saved else None
            reference = source.reference(arch)
            results, used_seed = parity.check(reference, _load(saved["discriminator"], "discriminator"),
                                              generator, saved.get("onnx"), seed=seed)
            log(parity.report(results, used_seed))
            # Kept beside the weights so the proof travels with the model (and the demo summary reads it).
            from util.files import write_json

            write_json(os.path.join(saved["discriminator"], "parity.json"), {
                "seed": used_seed, "tolerance": parity.TOLERANCE,
                "max_relative_error": {r.name: r.error for r in results}})
            failed = [r.name for r in results if not r.ok]
            if failed:
                hint = ""
                if f"discriminator: onnxruntime vs {reference.compared}" in failed:
                    hint = (f" (onnxruntime and {reference.compared} hold the same weights and still disagree: the "
                            "model is numerically ill-conditioned rather than misconverted)")
                raise UserInputError(f"{prefix}: parity check failed for {', '.join(failed)}{hint}; "
                                     "nothing written")

        from convert.model_card import write_converted_card

        for which, tmp, target in outputs:
            if which != "onnx":  # README.md model card, generated from the files just written
                write_converted_card(tmp, which, prefix, variables.global_step, pretrain_config, model_dir,
                                     name=os.path.basename(os.path.abspath(target)), source_kind=source.kind,
                                     live_run=run_state["live_run"])
        for _, tmp, target in outputs:
            put_in_place(tmp, target)
            log(f"wrote {target}")
    finally:
        for tmp in temps:
            discard(tmp)
    return results


def unfinished_run(prefix, model_dir, global_step, pretrain_config):
    """``{"warning": one line or None, "live_run": PID or None}``: whether the checkpoint is short
    of the run's ``num_train_steps``, and whether a live run still holds the model directory
    (util/dir_lock.py), so may write a newer checkpoint. Either way the weights convert as
    they are: the line says so, and the card records it."""
    from util.dir_lock import live_holder

    planned = pretrain_config.get("num_train_steps")
    parts = []
    if global_step is not None and isinstance(planned, int) and global_step < planned:
        parts.append(f"{os.path.basename(prefix)} is at step {global_step} of num_train_steps {planned}: "
                     "the run is not finished")
    pid = live_holder(model_dir)
    if pid is not None:
        parts.append(f"a live run ({f'PID {pid}' if pid else 'its PID not yet recorded'}) holds {model_dir} "
                     "and may write a newer checkpoint")
    warning = f"warning: {', and '.join(parts)}; converting the checkpoint as it is" if parts else None
    return {"warning": warning, "live_run": pid}


def _load(directory, which):
    """The saved model read back from disk, so verification covers the files themselves."""
    from transformers import ElectraForMaskedLM, ElectraForPreTraining

    cls = ElectraForPreTraining if which == "discriminator" else ElectraForMaskedLM
    return cls.from_pretrained(directory, local_files_only=True).eval()
