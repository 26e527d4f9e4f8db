"""ELECTRA-Small and -Base pre-training on a GPU: examples/s and model FLOP/s as a fraction of the device's peak.

    python -m bench.bench_pretraining_gpu [--sizes small,base] [--seconds 30] [--options] [--no_write]

The torch backend's own step (bench/pretraining_steps.torch_backend_step: its model, masking,
sampling, AdamW, clipping and train_step) at 128 tokens, vocab 40000, on one fixed synthetic
batch, and the backend's defaults otherwise (SDPA attention on a GPU). Precision: on a GPU fp16
autocast with a gradient scaler (the backend's ``--mixed_precision`` there) and bf16 autocast
(where the GPU has bf16); on a CPU bf16 autocast. Per size and precision: build, warm up
(``--warmup`` steps), then time steps for ``--seconds`` (at least ``--min_steps``). A batch
that does not fit in GPU memory is halved until it does. The two sizes in both precisions
take under 5 minutes with the warm-ups; ``--options`` adds fp32 and torch_compile rows for
each size and takes longer.

Model FLOPs per example are pretrain/step_log.py's count (the step log's), divided by the
step time and compared with (a) the device's dense tensor-core peak from NVIDIA's datasheets
(PEAKS below, for the AMP dtype) and (b) a matmul peak measured here, in the same dtype.

Anchor: NVIDIA's ELECTRA-Base (DeepLearningExamples, TensorFlow 2 with AMP) pre-trains at
about 955 sequences/s of 128 tokens on one A100; step_log's count puts that at 78 GFLOP per
sequence, about 24% of the A100's 312 TFLOP/s.

Without a GPU it runs on the CPU (the same code, bf16 autocast), so it can be tried and tested
anywhere; ``--tiny`` shrinks the model to seconds for a smoke test.
"""
import argparse
import gc
import os
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Dense (no sparsity) tensor-core peaks in TFLOP/s from NVIDIA's datasheets: (bf16, fp16); None
# where the GPU has no bf16. GeForce cards: fp16 with fp32 accumulation, as autocast runs it.
# First match of the pattern in torch.cuda.get_device_name() wins.
PEAKS = [
    (r"GH200|H200", (989.0, 989.0)),
    (r"H100.*PCIe", (756.0, 756.0)),
    (r"H100 NVL", (835.0, 835.0)),
    (r"H100", (989.0, 989.0)),  # SXM5 (e.g. "NVIDIA H100 80GB HBM3")
    (r"B200", (2250.0, 2250.0)),
    (r"A100", (312.0, 312.0)),
    (r"\bA10\b", (125.0, 125.0)),
    (r"\bA30\b", (165.0, 165.0)),
    (r"\bA40\b", (149.7, 149.7)),
    (r"RTX A6000", (154.8, 154.8)),
    (r"L40S", (362.0, 362.0)),
    (r"\bL40\b", (181.0, 181.0)),
    (r"\bL4\b", (121.0, 121.0)),
    (r"RTX 4090", (165.2, 165.2)),
    (r"RTX 3090", (71.0, 71.0)),
    (r"V100.*PCIE", (None, 112.0)),
    (r"V100", (None, 125.0)),
    (r"\bT4\b", (None, 65.0)),
]
ANCHOR_SEQUENCES, ANCHOR_MFU = 955.0, 0.24
ANCHOR = "NVIDIA's ELECTRA-Base with AMP on one A100: about 955 sequences/s at 128 tokens, about 24% MFU"
DEFAULT_BATCH = {"cuda": {"small": 256, "base": 128}, "cpu": {"small": 16, "base": 4}}
TINY = dict(embedding_size=32, vocab_size=1000, generator_hidden_size=1.0,
            model_hparam_overrides={"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                                    "intermediate_size": 256, "max_position_embeddings": 128})


def datasheet_peak(device_name, dtype):
    """FLOP/s of the device's dense tensor cores in ``dtype`` (bf16, fp16), or None when not in PEAKS."""
    for pattern, (bf16, fp16) in PEAKS:
        if re.search(pattern, device_name):
            value = bf16 if dtype == "bf16" else fp16
            return None if value is None else value * 1e12
    return None


def flop_rate(flops):
    return f"{flops / 1e12:.1f} TFLOP/s" if flops >= 1e12 else f"{flops / 1e9:.1f} GFLOP/s"


def measured_peak(device, dtype, n):
    """FLOP/s of the best of a few timed n^3 matmuls in ``dtype`` on ``device``."""
    from bench.pretraining_steps import torch_matmul_peak

    timer = torch_matmul_peak(device, (dtype,), n)
    best = min(timer()["seconds"][dtype] for _ in range(3))
    return 2 * n ** 3 / best


def run_size(size, device, batch_size, mode, compile_, args):
    """{examples_per_sec, flops_per_example, batch, steps, warmup_seconds} for one setting; halves the batch on OOM.

    ``mode``: train.autocast's precision names (fp32, fp16_gpu with its gradient scaler, bf16_cpu = bf16 autocast
    on whichever device).
    """
    import torch

    from bench.pretraining_steps import config, torch_backend_step
    from pretrain.step_log import flops_per_example

    while True:
        cfg = config(batch_size, size=size, mixed_precision=mode != "fp32", torch_compile=compile_,
                     **(TINY if args.tiny else {}))
        try:
            start = time.perf_counter()
            step, _ = torch_backend_step(cfg, device, mode=mode)
            for _ in range(args.warmup):
                step()
            warmup = time.perf_counter() - start
            steps, start = 0, time.perf_counter()
            while steps < args.min_steps or time.perf_counter() - start < args.seconds:
                step()  # train_step reads its values back: each step has finished on the device
                steps += 1
            seconds = time.perf_counter() - start
        except torch.cuda.OutOfMemoryError:
            if batch_size == 1:
                raise
            out_of_memory = True
        else:
            out_of_memory = False
        if out_of_memory:  # outside the except block, so the failed step's tensors are released
            step = None
            gc.collect()
            torch.cuda.empty_cache()
            batch_size //= 2
            print(f"{size}: out of memory, batch {batch_size} next", flush=True)
            continue
        return dict(examples_per_sec=batch_size * steps / seconds, flops_per_example=flops_per_example(cfg),
                    batch=batch_size, steps=steps, warmup_seconds=warmup)


def anchor_comparison(measured, tiny):
    """ELECTRA-Base's AMP rows beside the anchor: sequences/s as a multiple of 955, and MFU against a datasheet peak."""
    if tiny:
        return ""
    parts = [f"{setting}: {rate:.0f} sequences/s = {rate / ANCHOR_SEQUENCES:.2f}x the anchor"
             + (f", {mfu:.1%} MFU against the anchor's {ANCHOR_MFU:.0%}" if mfu is not None else "")
             for size, setting, rate, mfu in measured if size == "base" and setting != "fp32"]
    return (" ELECTRA-Base here, " + "; ".join(parts) + ".") if parts else ""


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="small,base")
    p.add_argument("--batch_size", type=int, default=None, help="default: per size and device (DEFAULT_BATCH)")
    p.add_argument("--seconds", type=float, default=30.0, help="timed seconds per setting")
    p.add_argument("--min_steps", type=int, default=None, help="default 5 on a GPU, 1 on a CPU")
    p.add_argument("--warmup", type=int, default=None, help="default 3 on a GPU, 1 on a CPU")
    p.add_argument("--options", action="store_true", help="also fp32 and torch_compile rows")
    p.add_argument("--tiny", action="store_true", help="a 2-layer model of width 64: a smoke test in seconds")
    p.add_argument("--no_write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = p.parse_args()
    import torch

    from util.devices import torch_build

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    name = torch.cuda.get_device_name(0) if cuda else "CPU (no GPU visible to torch)"
    args.min_steps = args.min_steps if args.min_steps is not None else (5 if cuda else 1)
    args.warmup = args.warmup if args.warmup is not None else (3 if cuda else 1)
    # (dtype, train.autocast mode): fp16 autocast + GradScaler (the backend's --mixed_precision on a GPU)
    # and bf16 autocast (its --mixed_precision on a CPU; on a GPU an option measured here).
    amps = [("fp16", "fp16_gpu"), ("bf16", "bf16_cpu")] if cuda else [("bf16", "bf16_cpu")]
    if cuda and not torch.cuda.is_bf16_supported():
        amps = amps[:1]
    n = 256 if args.tiny else (8192 if cuda else 2048)
    dtypes = [dtype for dtype, _ in amps] + ["fp32"]
    peaks = {dtype: measured_peak(device, dtype, n) for dtype in dtypes}
    sheet = {dtype: datasheet_peak(name, dtype) if dtype != "fp32" else None for dtype in dtypes}
    settings = [(dtype, mode, False) for dtype, mode in amps]
    if args.options:
        settings += [("fp32", "fp32", False), (amps[0][0], amps[0][1], True)]
    rows, measured = [], []
    for size in [s for s in args.sizes.split(",") if s]:
        for dtype, mode, compile_ in settings:
            batch = args.batch_size or DEFAULT_BATCH[device][size]
            result = run_size(size, device, batch, mode, compile_, args)
            achieved = result["flops_per_example"] * result["examples_per_sec"]
            label = f"ELECTRA-{size.capitalize()}" + (" (--tiny sizes)" if args.tiny else "")
            setting = {"fp16_gpu": "fp16 autocast + GradScaler", "bf16_cpu": "bf16 autocast", "fp32": "fp32"}[mode]
            setting += ", torch_compile" if compile_ else ""
            of_sheet = f"{achieved / sheet[dtype]:.1%}" if sheet[dtype] else "-"
            rows.append(f"| {label} | {setting} | {result['batch']} | {result['examples_per_sec']:.1f} | "
                        f"{flop_rate(achieved)} | {of_sheet} | {achieved / peaks[dtype]:.1%} | "
                        f"{result['steps']} | {result['warmup_seconds']:.0f} |")
            mfu = achieved / sheet[dtype] if sheet[dtype] else None
            measured.append((size, setting, result["examples_per_sec"], mfu))
            print(rows[-1], flush=True)
    body = "\n".join([
        f"Device: {name}; {torch_build()}. Sequences of 128 tokens, "
        + ("--tiny sizes (hidden 64, 2 layers, vocab 1000)" if args.tiny else "vocab 40000")
        + ", the torch backend's step with its defaults; model FLOPs per example from pretrain/step_log.py.",
        "",
        "| model | precision | batch | examples/s | model FLOP/s | of datasheet peak | of measured matmul peak | "
        "timed steps | build + warm-up s |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"- Measured matmul peak ({n}^3, best of 3): "
        + ", ".join(f"{dtype} {flop_rate(peaks[dtype])}" for dtype in dtypes) + "; datasheet dense peak: "
        + ", ".join(f"{dtype} {sheet[dtype] / 1e12:.0f} TFLOP/s" if sheet[dtype] else f"{dtype} not in PEAKS"
                    for dtype in dtypes if dtype != "fp32") + ".",
        f"- Anchor to beat: {ANCHOR}." + anchor_comparison(measured, args.tiny),
    ])
    print(body)
    if not args.no_write and not args.tiny:
        from bench.report import write_section

        command = f"python -m bench.bench_pretraining_gpu --sizes {args.sizes} --seconds {args.seconds:g}" + \
            (" --options" if args.options else "")
        write_section("pretraining_gpu", f"Pre-training on {'a GPU' if cuda else 'the CPU (GPU benchmark fallback)'}: "
                      "ELECTRA-Small and -Base, model FLOP/s against the device's peak", command, body)


if __name__ == "__main__":
    main()
