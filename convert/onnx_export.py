"""Export a transformers Electra model (pretraining discriminator or fine-tuned head) to ONNX.

Uses the TorchScript exporter (``dynamo=False``): the dynamo exporter needs onnxscript and
onnx >= 1.19, which do not import beside TensorFlow 2.15. Batch and sequence axes are
dynamic; the graph takes ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64)
and returns ``logits``.
"""
import os
import tempfile

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17  # LayerNormalization is a single op from opset 17


def _logits_only(model):
    """Wrap a transformers model so the traced graph has exactly one output."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids, return_dict=True).logits

    return LogitsOnly()


def _per_token(model):
    """Whether logits have a sequence axis (pretraining, MLM, token classification)."""
    name = type(model).__name__
    return not (name.endswith("ForSequenceClassification") or name.endswith("ForMultipleChoice"))


def export_onnx(model, path, opset=OPSET, per_token=None):
    """Write ``model`` as ONNX to ``path`` (atomically) and return the path.

    ``model`` is any transformers model whose output has ``.logits`` and that takes
    input_ids / attention_mask / token_type_ids: ElectraForPreTraining,
    ElectraForSequenceClassification, ElectraForTokenClassification, ElectraForMaskedLM.
    ``per_token`` says whether logits have a sequence axis; by default it is decided from
    the model class (False only for *ForSequenceClassification / *ForMultipleChoice).
    """
    import torch

    path = os.fspath(path)
    if per_token is None:
        per_token = _per_token(model)
    was_training = model.training
    model.eval()
    # Dummy inputs with padding, so the mask path is traced with real values.
    batch, seq_length = 2, 7
    input_ids = torch.randint(5, model.config.vocab_size, (batch, seq_length), dtype=torch.long)
    attention_mask = torch.ones(batch, seq_length, dtype=torch.long)
    attention_mask[1, 4:] = 0
    token_type_ids = torch.zeros(batch, seq_length, dtype=torch.long)
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    axes["logits"] = {0: "batch", 1: "sequence"} if per_token else {0: "batch"}
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        with torch.no_grad():
            torch.onnx.export(_logits_only(model), (input_ids, attention_mask, token_type_ids), tmp,
                              input_names=list(INPUT_NAMES), output_names=["logits"],
                              dynamic_axes=axes, opset_version=opset, do_constant_folding=True,
                              dynamo=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    finally:
        model.train(was_training)
    return path


def onnx_session(path, threads=None):
    """An onnxruntime CPU session with full graph optimisation."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])


def run_onnx(session, input_ids, attention_mask, token_type_ids):
    """Logits from a session for int arrays [B, T] (only the inputs the graph declares are fed)."""
    import numpy as np

    feeds = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
    wanted = {i.name for i in session.get_inputs()}
    return session.run(["logits"], {k: np.asarray(v, dtype=np.int64) for k, v in feeds.items() if k in wanted})[0]
