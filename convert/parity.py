"""The proof that a conversion is right: the source network vs PyTorch vs onnxruntime logits on random inputs.

The source network is the checkpoint's own: TF ops over a TF checkpoint (tf_reference), or the
torch backend's modules over a torch checkpoint (torch_reference).

Inputs are drawn fresh each run (the seed is printed so a failure can be replayed): random
token ids, two segments, and right padding of random length. The error reported is
``max |a - b| / max |b|`` over all positions (padding included), with the source
network as the reference ``b``; element-wise relative error is meaningless for logits near zero.
"""
import dataclasses
import os

import numpy as np

TOLERANCE = 1e-4


def random_inputs(vocab_size, max_length, type_vocab_size=2, batch_size=4, seq_length=None, seed=None):
    """(input_ids, attention_mask, token_type_ids, seed) as int64 arrays [B, T], each row padded."""
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little")
    rng = np.random.default_rng(seed)
    seq_length = seq_length or min(max_length, 64)
    input_ids = rng.integers(5, vocab_size, (batch_size, seq_length)) if vocab_size > 5 else \
        rng.integers(0, vocab_size, (batch_size, seq_length))
    lengths = rng.integers(2, seq_length + 1, batch_size)
    lengths[0] = seq_length  # one row without padding
    attention_mask = (np.arange(seq_length)[None, :] < lengths[:, None]).astype(np.int64)
    split = np.array([rng.integers(1, n + 1) for n in lengths])
    token_type_ids = ((np.arange(seq_length)[None, :] >= split[:, None]) * attention_mask).astype(np.int64)
    token_type_ids = np.minimum(token_type_ids, type_vocab_size - 1)
    input_ids = np.where(attention_mask == 1, input_ids, 0).astype(np.int64)  # [PAD] is id 0
    return input_ids, attention_mask, token_type_ids, seed


def relative_error(value, reference):
    value, reference = np.asarray(value, np.float64), np.asarray(reference, np.float64)
    if value.shape != reference.shape:
        return float("inf")
    return float(np.max(np.abs(value - reference)) / max(np.max(np.abs(reference)), 1e-30))


@dataclasses.dataclass
class ParityResult:
    name: str
    error: float
    shape: tuple

    @property
    def ok(self):
        return self.error < TOLERANCE


def torch_logits(model, input_ids, attention_mask, token_type_ids):
    import torch

    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(attention_mask),
                    token_type_ids=torch.from_numpy(token_type_ids))
    return out.logits.numpy()


def check(reference, discriminator, generator=None, onnx_path=None, batch_size=4, seq_length=None, seed=None):
    """Compare the runtimes on one random batch; returns (list of ParityResult, seed)."""
    cfg = reference.arch.discriminator
    inputs = random_inputs(cfg["vocab_size"], cfg["max_position_embeddings"], cfg["type_vocab_size"],
                           batch_size, seq_length, seed)
    *arrays, seed = inputs
    # "PyTorch vs TF" for a TF checkpoint; "transformers vs torch backend" for a torch one.
    ref, model = reference.name, reference.compared
    results = []
    ref_disc = reference.discriminator_logits(*arrays)
    pt_disc = torch_logits(discriminator, *arrays)
    results.append(ParityResult(f"discriminator: {model} vs {ref}", relative_error(pt_disc, ref_disc),
                                ref_disc.shape))
    if onnx_path:
        from convert.onnx_export import onnx_session, run_onnx

        ort_disc = run_onnx(onnx_session(onnx_path), *arrays)
        results.append(ParityResult(f"discriminator: onnxruntime vs {ref}", relative_error(ort_disc, ref_disc),
                                    ref_disc.shape))
        results.append(ParityResult(f"discriminator: onnxruntime vs {model}", relative_error(ort_disc, pt_disc),
                                    ref_disc.shape))
    if generator is not None:
        ref_gen = reference.generator_logits(*arrays)
        pt_gen = torch_logits(generator, *arrays)
        results.append(ParityResult(f"generator MLM: {model} vs {ref}", relative_error(pt_gen, ref_gen),
                                    ref_gen.shape))
    return results, seed


def report(results, seed):
    """The table printed at the end of a conversion."""
    lines = [f"parity on random inputs (seed {seed}; error = max|a-b| / max|reference|, "
             f"must be < {TOLERANCE:g}):"]
    width = max([40] + [len(r.name) for r in results])
    for r in results:
        shape = "x".join(str(d) for d in r.shape)
        lines.append(f"  {r.name:<{width}} {r.error:.2e}  [{shape}]  {'ok' if r.ok else 'FAILED'}")
    return "\n".join(lines)
