"""Prediction through an exported ONNX file, checked against the fine-tuned directory's head first.

An ONNX file of another model (the pretrained discriminator's per-token logits given for an
NSMC classifier) would otherwise fail deep in prediction, or worse, give per-token scores read
as class scores; ``check_onnx_matches_head`` makes that one line before anything runs.
"""
import os

import numpy as np

from util.errors import UserInputError


class OnnxRuntime:
    """An exported ONNX file of the same directory (``python -m convert.onnx_export``)."""

    def __init__(self, onnx_path, info, threads=None, device=None):
        from convert.onnx_export import onnx_session

        if not os.path.isfile(onnx_path):
            raise UserInputError(f"ONNX file not found: {onnx_path}")
        providers = onnx_providers(device)
        try:
            self.session = onnx_session(onnx_path, threads, providers)
        except Exception as e:  # onnxruntime's own errors are long; one line is enough
            raise UserInputError(f"{onnx_path}: not a loadable ONNX file ({str(e).splitlines()[0][:200]})") from None
        check_onnx_matches_head(self.session, onnx_path, info)
        from convert.onnx_binding import check_binding

        check_binding(self.session, onnx_path, info.model_dir)

    def __call__(self, batch):
        """Outputs by name for a batch of numpy arrays (finetune.runtimes.collate)."""
        from convert.onnx_export import PARSER_INPUTS, run_onnx_outputs

        ids = batch["input_ids"]
        types = batch["token_type_ids"] if "token_type_ids" in batch else np.zeros_like(ids)
        extra = {name: batch[name] for name in PARSER_INPUTS if name in batch}
        return run_onnx_outputs(self.session, ids, batch["attention_mask"], types, **extra)


def onnx_providers(device):
    """onnxruntime's execution providers for ``device``: cpu (the default), cuda or cuda:N
    (CUDAExecutionProvider), or a provider's own name; one line when this install lacks it."""
    import onnxruntime as ort

    name = device or "cpu"
    if name.lower() == "cpu":
        return ["CPUExecutionProvider"]
    lower = name.lower()
    if lower == "cuda" or (lower.startswith("cuda:") and lower[5:].isdigit()):
        provider, options = "CUDAExecutionProvider", {"device_id": int(lower[5:]) if ":" in lower else 0}
    else:
        provider, options = name, {}
    available = ort.get_available_providers()
    if provider not in available:
        hint = "; CUDA needs the onnxruntime-gpu package and a CUDA device" if provider.startswith("CUDA") else ""
        raise UserInputError(f"--device {device}: onnxruntime {ort.__version__} here has no {provider} "
                             f"(available: {', '.join(available)}){hint}")
    return [(provider, options), "CPUExecutionProvider"]


def _expected_outputs(info):
    """Output name -> (rank, size of the last axis or None) that the directory's head produces."""
    if info.kind == "span_extraction":
        return {"start_logits": (2, None), "end_logits": (2, None)}
    if info.kind == "token_classification":
        return {"logits": (3, len(info.labels))}
    return {"logits": (2, 1 if info.kind == "regression" else len(info.labels))}


def _shape_text(shape):
    return "[" + ", ".join(str(d) if isinstance(d, int) else (d or "?") for d in shape) + "]"


def check_onnx_matches_head(session, onnx_path, info):
    """A one-line error unless the ONNX graph takes token ids and returns this head's outputs.

    An ONNX file of another model (the pretrained discriminator's per-token logits for an
    NSMC classifier) would otherwise fail deep in prediction, or worse, give per-token scores
    read as class scores. Output shapes are [batch, sequence] or [batch, sequence, labels]
    per token and [batch, labels] per sequence; a per-token axis is symbolic ("sequence").
    """
    from convert.onnx_export import PARSER_INPUTS, PARSER_OUTPUTS

    redo = f"export this directory's model with python -m convert.onnx_export --model_dir {info.model_dir}"
    inputs = {i.name for i in session.get_inputs()}
    known = {"input_ids", "attention_mask", "token_type_ids"}
    if info.kind == "dependency_parsing":
        known |= set(PARSER_INPUTS)
    if "input_ids" not in inputs or not inputs <= known:
        raise UserInputError(f"{onnx_path}: inputs {', '.join(sorted(inputs))}, but this model takes "
                             f"{', '.join(sorted(known))}; {redo}")
    outputs = {o.name: o.shape for o in session.get_outputs()}
    if info.kind == "dependency_parsing":  # the parser's outputs are checked by name
        missing = [n for n in PARSER_OUTPUTS if n not in outputs]
        if missing:
            raise UserInputError(f"{onnx_path}: outputs {', '.join(sorted(outputs))}, but {info.model_dir} is a "
                                 f"dependency_parsing model needing {', '.join(PARSER_OUTPUTS)}; {redo}")
        return
    found = ", ".join(f"{n} {_shape_text(shape)}" for n, shape in outputs.items())
    labels = f" over {len(info.labels)} labels" if info.kind in ("classification", "token_classification") else ""
    for name, (rank, last) in _expected_outputs(info).items():
        shape = outputs.get(name)
        ok = shape is not None and len(shape) == rank and (last is None or shape[-1] == last)
        if ok and rank == 2 and last is not None:
            ok = isinstance(shape[-1], int)  # a class axis is fixed; a sequence axis is symbolic
        if not ok:
            want = {"span_extraction": "start_logits and end_logits [batch, sequence]",
                    "token_classification": f"logits [batch, sequence, {last}]"}.get(info.kind, f"logits [batch, {last}]")
            raise UserInputError(f"{onnx_path}: outputs {found}, but {info.model_dir} is a {info.kind} "
                                 f"model{labels} needing {want}; {redo}")
