"""The model behind a Predictor: PyTorch eager mode, or onnxruntime (finetune/onnx_runtime.py).

Both are fed the same numpy batches: features sorted longest first and padded to each
batch's longest (as finetune.data batches evaluation), built here without torch so the ONNX
path imports neither torch nor transformers. ``device`` is ``cpu`` (the default), ``cuda`` or
``cuda:N``; a device that is asked for and absent is one line, before the model is loaded.
"""
import numpy as np

from util.errors import UserInputError

# The model inputs a feature may hold, and what pads them: token ids the tokenizer's pad id,
# masks 0, a parser's word positions -100 (finetune.data.Collator's values).
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "word_starts", "word_ends")
PAD_VALUES = {"attention_mask": 0, "token_type_ids": 0, "word_starts": -100, "word_ends": -100}


def collate(features, pad_token_id):
    """{input name: int64 array [batch, longest]} for the model inputs the features hold."""
    batch = {}
    for key in MODEL_INPUTS:
        if key not in features[0]:
            continue
        width = max(len(f[key]) for f in features)
        array = np.full((len(features), width), PAD_VALUES.get(key, pad_token_id), dtype=np.int64)
        for row, feature in enumerate(features):
            array[row, :len(feature[key])] = feature[key]
        batch[key] = array
    return batch


def length_batches(features, batch_size):
    """Index lists, longest features first, so each batch pads little; every feature once."""
    order = sorted(range(len(features)), key=lambda i: -len(features[i]["input_ids"]))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def run_features(runtime, features, pad_token_id, batch_size, per_token):
    """Raw outputs for every feature, in feature order: a list of dicts of numpy rows; with
    ``per_token`` each row's sequence outputs are cut back to its feature's length."""
    rows = [None] * len(features)
    for indices in length_batches(features, batch_size):
        outputs = runtime(collate([features[i] for i in indices], pad_token_id))
        for j, i in enumerate(indices):
            length = len(features[i]["input_ids"])
            rows[i] = {k: v[j][:length] if per_token else v[j] for k, v in outputs.items()}
    return rows


def torch_device(device):
    """The torch device for ``device`` (cpu, cuda, cuda:N), or a one-line UserInputError."""
    import torch

    name = (device or "cpu").lower()
    if name == "cpu":
        return torch.device("cpu")
    if not (name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit())):
        raise UserInputError(f"--device {device}: PyTorch runs on cpu, cuda or cuda:N "
                             "(execution providers are for --onnx)")
    if not torch.cuda.is_available():
        from util.devices import TORCH_GPU_INSTALL, torch_build

        raise UserInputError(f"--device {device}: torch sees no CUDA device (installed: {torch_build()}); "
                             f"{TORCH_GPU_INSTALL}, or leave --device at cpu")
    index = int(name[5:]) if ":" in name else 0
    if index >= torch.cuda.device_count():
        raise UserInputError(f"--device {device}: torch sees {torch.cuda.device_count()} CUDA device(s)")
    return torch.device(name)


class TorchRuntime:
    """The directory's model in PyTorch eager mode, inference only."""

    def __init__(self, model_dir, threads=None, device=None):
        import inspect

        import torch

        from convert.onnx_export import load_finetuned, output_names

        self.device = torch_device(device)  # checked before the weights are read
        if threads:
            torch.set_num_threads(threads)
        self.model = load_finetuned(model_dir).to(self.device)
        self.names = output_names(self.model)
        self.inputs = set(inspect.signature(self.model.forward).parameters)

    def __call__(self, batch):
        import torch

        feeds = {k: torch.from_numpy(v).to(self.device) for k, v in batch.items() if k in self.inputs}
        with torch.inference_mode():
            out = self.model(**feeds)
        return {name: out[name].float().cpu().numpy() for name in self.names}
