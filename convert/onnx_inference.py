"""Run an exported ONNX Electra model with onnxruntime on Korean text.

    python -m convert.onnx_inference --onnx_path disc.onnx --tokenizer_dir DIR "문장" ...

The tokenizer directory is a converted (or fine-tuned) model directory; when its
tokenizer_config.json says ``mecab_wordpiece`` the text is tokenized with the published
mecab algorithm (util.hf_tokenizer), as in pretraining. A discriminator prints, per token, the probability that it
was replaced; a sequence classifier prints its label probabilities.
"""
import argparse
import json
import os

import numpy as np

from util.errors import UserInputError, run_cli


class OnnxElectra:
    """An onnxruntime session plus the tokenizer it was trained with."""

    def __init__(self, onnx_path, tokenizer_dir, max_length=None, threads=None):
        os.environ.setdefault("USE_TF", "0")
        from convert.onnx_export import onnx_session
        from util.hf_tokenizer import load_tokenizer

        if not os.path.isfile(onnx_path):
            raise UserInputError(f"ONNX file not found: {onnx_path}")
        if not os.path.isfile(os.path.join(tokenizer_dir, "vocab.txt")):
            raise UserInputError(f"{tokenizer_dir}: no vocab.txt; pass a converted model directory")
        self.session = onnx_session(onnx_path, threads)
        self.tokenizer = load_tokenizer(tokenizer_dir)  # mecab_wordpiece dirs get the mecab tokenizer
        self.max_length = max_length or self.tokenizer.model_max_length
        self.id2label = _labels(tokenizer_dir)

    def encode(self, texts, text_pairs=None):
        pairs = list(text_pairs) if text_pairs else None
        return self.tokenizer(list(texts), pairs, padding=True, truncation=True, max_length=self.max_length,
                              return_tensors="np", return_token_type_ids=True)

    def logits(self, texts, text_pairs=None):
        """(logits, encoding): [B, T] for a discriminator, [B, labels] for a classifier."""
        from convert.onnx_export import run_onnx

        enc = self.encode(texts, text_pairs)
        return run_onnx(self.session, enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]), enc


def _labels(directory):
    path = os.path.join(directory, "config.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        labels = json.load(f).get("id2label")
    return {int(k): v for k, v in labels.items()} if labels else None


def describe(model, texts):
    """Human-readable lines for each text."""
    logits, enc = model.logits(texts)
    lines = []
    for row, text in enumerate(texts):
        lines.append(text)
        if logits.ndim == 2 and logits.shape[1] == enc["input_ids"].shape[1]:
            length = int(enc["attention_mask"][row].sum())
            tokens = model.tokenizer.convert_ids_to_tokens(enc["input_ids"][row][:length])
            probs = 1.0 / (1.0 + np.exp(-logits[row][:length]))
            lines.append("  " + " ".join(f"{t}:{p:.2f}" for t, p in zip(tokens, probs)))
        else:
            scores = np.exp(logits[row] - logits[row].max())
            scores /= scores.sum()
            names = model.id2label or {}
            lines.append("  " + ", ".join(f"{names.get(i, i)}={p:.3f}" for i, p in enumerate(scores)))
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run an ONNX Electra model on Korean text.")
    parser.add_argument("--onnx_path", required=True)
    parser.add_argument("--tokenizer_dir", required=True, help="converted or fine-tuned model directory")
    parser.add_argument("--max_length", type=int, default=None, help="default: the tokenizer's model_max_length")
    parser.add_argument("texts", nargs="+")
    args = parser.parse_args(argv)
    model = OnnxElectra(args.onnx_path, args.tokenizer_dir, args.max_length)
    print("\n".join(describe(model, args.texts)))


if __name__ == "__main__":
    run_cli(main)
