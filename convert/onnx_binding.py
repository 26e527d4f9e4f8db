"""An exported ONNX file names the fine-tuned directory it came from: hashes of its weights and labels.

Two heads of one shape (NSMC's and Question Pair's ``logits [batch, 2]``) pass every shape
check, so an ONNX file of the other model would be run and its answers read as this model's.
``convert.onnx_export`` therefore writes, into the ONNX file's metadata (``metadata_props``):

- ``weights_sha256``: SHA-256 over the directory's weight files (``model*.safetensors`` or
  ``pytorch_model*.bin``), each as its name, its size and its bytes, in name order;
- ``label_map_sha256``: SHA-256 of config.json's ``id2label`` as canonical JSON (keys sorted);
- ``architecture``: config.json's ``architectures[0]``.

``check_binding`` compares them with the directory on load and refuses a mismatch, or a file
without them, in one line. It reads the metadata through onnxruntime and hashes files with
hashlib: no torch, transformers or onnx needed.
"""
import glob
import hashlib
import json
import os

from util.errors import UserInputError

KEYS = ("weights_sha256", "label_map_sha256")
WEIGHT_PATTERNS = ("model*.safetensors", "pytorch_model*.bin")


def weight_files(model_dir):
    for pattern in WEIGHT_PATTERNS:
        found = sorted(glob.glob(os.path.join(model_dir, pattern)))
        if found:
            return found
    raise UserInputError(f"{model_dir}: no weight file ({' or '.join(WEIGHT_PATTERNS)})")


def model_fingerprint(model_dir):
    """{"weights_sha256", "label_map_sha256"} of a fine-tuned directory (hex digests)."""
    from util.files import read_json

    weights = hashlib.sha256()
    for path in weight_files(model_dir):
        weights.update(f"{os.path.basename(path)}\0{os.path.getsize(path)}\0".encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                weights.update(block)
    config = read_json(os.path.join(model_dir, "config.json"), "model config")
    labels = json.dumps(config.get("id2label") or {}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return {"weights_sha256": weights.hexdigest(), "label_map_sha256": hashlib.sha256(labels.encode()).hexdigest()}


def binding_metadata(model_dir):
    """The metadata an export of ``model_dir`` carries."""
    from util.files import read_json

    config = read_json(os.path.join(model_dir, "config.json"), "model config")
    return {**model_fingerprint(model_dir), "architecture": (config.get("architectures") or [""])[0]}


def write_metadata(onnx_path, metadata):
    """Add ``metadata`` (str -> str) to an ONNX file's metadata_props, in place."""
    import onnx

    model = onnx.load(onnx_path)
    present = {p.key: p for p in model.metadata_props}
    for key, value in metadata.items():
        entry = present.get(key) or model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save(model, onnx_path)


def check_binding(session, onnx_path, model_dir):
    """A one-line UserInputError unless the session's file was exported from ``model_dir``."""
    meta = session.get_modelmeta().custom_metadata_map
    redo = f"export it again: python -m convert.onnx_export --model_dir {model_dir} --overwrite"
    if not all(key in meta for key in KEYS):
        raise UserInputError(f"{onnx_path} records no model it was exported from; {redo}")
    ours = model_fingerprint(model_dir)
    if meta["weights_sha256"] != ours["weights_sha256"]:
        raise UserInputError(f"{onnx_path} was exported from another model: its weights (sha256 "
                             f"{meta['weights_sha256'][:12]}) are not {model_dir}'s (sha256 "
                             f"{ours['weights_sha256'][:12]}); {redo}")
    if meta["label_map_sha256"] != ours["label_map_sha256"]:
        raise UserInputError(f"{onnx_path} was exported under another label map than {model_dir}/config.json's "
                             f"id2label; {redo}")
