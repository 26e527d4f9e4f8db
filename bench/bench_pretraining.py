"""ELECTRA-Small pre-training examples/s on this CPU: the TF and torch backends, and a plain transformers loop.

    .venv/bin/python -m bench.bench_pretraining [--batch_size 16] [--rounds 3] [--steps 2] [--variants ...]

Model: the published Dialog-KoELECTRA-Small config (hidden 256, 12 layers, 4 heads,
intermediate 1024, embedding 128, generator_hidden_size 1.0 so the generator is as wide as
the discriminator, vocab 40000), seq 128, a small batch so the run takes minutes. Each
variant's step is built by bench/pretraining_steps.py:

- tf_fp32, tf_bf16: the TF backend's graph (pretrain/training.py), fp32 and --mixed_precision
  (grappler's oneDNN bfloat16 rewrite on a CPU with AVX-512 BF16);
- torch_fp32, torch_bf16: the torch backend's train_step (pretrain/torch_backend: its model,
  masking, sampling, AdamW, clipping), fp32 and --mixed_precision (bf16 autocast on a CPU),
  with the backend's defaults;
- transformers: a plain loop over transformers' ELECTRA classes with torch AdamW;
- options of the torch backend, each against its default: torch_*_attention (the attention
  the default does not use on this device: SDPA or the explicit softmax), torch_*_compile
  (torch.compile on).

Each runs in its own child process, built and warmed up first; the parent then interleaves
timed rounds (one variant after another, every round) so load from other jobs on a shared
machine hits all alike. Every round the tf_fp32 child times a 2048^3 matmul in fp32 and bf16,
and the torch_fp32 child the same in PyTorch: the peaks the achieved FLOP/s are compared with,
under the same load. FLOPs per example are pretrain/step_log.py's count, the one the step log uses.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.pretraining_steps import SEQ, VOCAB  # noqa: E402

# name -> (label, what the child builds)
VARIANTS = {
    "tf_fp32": ("TF backend fp32", dict(system="tf", mode="fp32")),
    "tf_bf16": ("TF backend --mixed_precision (oneDNN bf16)", dict(system="tf", mode="bf16_cpu")),
    "transformers": ("plain transformers loop fp32", dict(system="transformers")),
    "torch_fp32": ("torch backend fp32", dict(system="torch", precision="fp32")),
    "torch_bf16": ("torch backend --mixed_precision (bf16 autocast)", dict(system="torch", precision="bf16")),
    "torch_fp32_attention": ("torch backend fp32, other attention", dict(system="torch", precision="fp32",
                                                                          attention="other")),
    "torch_bf16_attention": ("torch backend bf16, other attention", dict(system="torch", precision="bf16",
                                                                          attention="other")),
    "torch_fp32_compile": ("torch backend fp32, torch_compile", dict(system="torch", precision="fp32", compile=True)),
    "torch_bf16_compile": ("torch backend bf16, torch_compile", dict(system="torch", precision="bf16", compile=True)),
}
CORE = ["tf_fp32", "tf_bf16", "transformers", "torch_fp32", "torch_bf16"]


# ---- children ---------------------------------------------------------------------------

def build(spec, batch_size):
    """(step, peak or None, profile or None, facts) for one variant, in this process."""
    from bench import pretraining_steps as steps

    if spec["system"] == "tf":
        step, profile = steps.tf_graph_step(spec["mode"], batch_size)
        return step, steps.tf_matmul_peak() if spec["mode"] == "fp32" else None, profile, {}
    if spec["system"] == "transformers":
        return steps.transformers_step(batch_size), None, None, {}
    from pretrain.torch_backend.model import attention_for

    import torch

    cfg = steps.config(batch_size, mixed_precision=spec["precision"] == "bf16",
                       torch_compile=spec.get("compile", False))
    used = attention_for(torch.device("cpu"))
    if spec.get("attention") == "other":
        used = "sdpa" if used == "explicit" else "explicit"
    step, profile = steps.torch_backend_step(cfg, attention=used)
    peak = steps.torch_matmul_peak() if spec["precision"] == "fp32" and not spec.get("attention") \
        and not spec.get("compile") else None
    return step, peak, profile, {"attention": used}


def child(variant, batch_size, warmup):
    start = time.perf_counter()
    step, peak, profile, facts = build(VARIANTS[variant][1], batch_size)
    losses = [step() for _ in range(warmup)]
    ready = {"ready": True, "warmup_loss": losses[-1], "build_seconds": time.perf_counter() - start, **facts}
    print(json.dumps({**ready, **(profile() if profile else {})}), flush=True)
    for line in sys.stdin:
        if line.strip() == "peak":
            print(json.dumps(peak()), flush=True)
            continue
        steps = int(line)
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            loss = step()
        print(json.dumps({"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
                          "loss": loss}), flush=True)


# ---- parent -----------------------------------------------------------------------------

def ask(proc, line):
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def spread(per_round, a, b):
    ratios = [x[b] / x[a] for x in per_round]  # seconds of b / seconds of a = speed of a / speed of b
    return f"{min(ratios):.2f}x-{max(ratios):.2f}x"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per variant per round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated subset of {', '.join(VARIANTS)}; docs/benchmarks.md is written only "
                             f"when it includes {', '.join(CORE)}")
    parser.add_argument("--child", choices=list(VARIANTS))
    parser.add_argument("--no_write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.batch_size, args.warmup)
    chosen = [v for v in args.variants.split(",") if v]
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        sys.exit(f"error: unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")

    children, info = {}, {}
    loads = [os.getloadavg()[0]]
    for variant in chosen:  # one at a time, so building and warm-up do not overlap
        proc = subprocess.Popen([sys.executable, "-m", "bench.bench_pretraining", "--child", variant,
                                 "--batch_size", str(args.batch_size), "--warmup", str(args.warmup)],
                                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                # Passive OpenMP waits: spinning threads collapse on a shared machine.
                                env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", OMP_WAIT_POLICY="PASSIVE"))
        line = proc.stdout.readline()
        if not line:
            sys.exit(f"error: the {variant} child exited (code {proc.wait()}) before it was ready")
        info[variant] = json.loads(line)
        children[variant] = proc
        print(f"{variant}: ready in {info[variant]['build_seconds']:.0f} s", flush=True)
    seconds = {v: 0.0 for v in chosen}
    cpu_seconds = {v: 0.0 for v in chosen}
    per_round = []
    peaks = {}  # (library, dtype) -> seconds summed over rounds
    for r in range(args.rounds):
        for library, variant in (("TensorFlow", "tf_fp32"), ("PyTorch", "torch_fp32")):
            if variant in children:
                peak = ask(children[variant], "peak")
                for dtype, s in peak["seconds"].items():
                    peaks[library, dtype] = peaks.get((library, dtype), 0.0) + s
        round_seconds = {}
        for variant, proc in children.items():
            result = ask(proc, str(args.steps))
            seconds[variant] += result["seconds"]
            round_seconds[variant] = result["seconds"]
            cpu_seconds[variant] += result["cpu_seconds"]
            print(f"round {r + 1} {variant}: {args.batch_size * args.steps / result['seconds']:.2f} examples/s, "
                  f"{args.batch_size * args.steps / result['cpu_seconds']:.2f} examples/CPU-s, "
                  f"loss {result['loss']:.3f}", flush=True)
        per_round.append(round_seconds)
        loads.append(os.getloadavg()[0])
    for proc in children.values():
        proc.stdin.close()
        proc.wait()

    peak_flops = {key: 2 * 2048 ** 3 * args.rounds / s for key, s in peaks.items()}
    body = report(args, chosen, seconds, per_round, info, peak_flops, loads)
    print(body)
    if not args.no_write and set(CORE) <= set(chosen):
        from bench.report import write_section

        subset = "" if set(chosen) == set(VARIANTS) else f" --variants {','.join(chosen)}"
        write_section("pretraining", "ELECTRA-Small pre-training (run_pretraining.py, TF and torch backends)",
                      f"python -m bench.bench_pretraining --batch_size {args.batch_size} --rounds {args.rounds} "
                      f"--steps {args.steps} --warmup {args.warmup}{subset}", body)


def report(args, chosen, seconds, per_round, info, peak_flops, loads):
    from bench.pretraining_steps import config
    from pretrain.step_log import flops_per_example

    # Each variant's median over the rounds: a round another job slowed does not set the figure.
    rate = {v: statistics.median(args.batch_size * args.steps / r[v] for r in per_round) for v in chosen}
    ours = flops_per_example(config(args.batch_size))
    everywhere = flops_per_example(config(args.batch_size, max_predictions_per_seq=SEQ))

    def flops(variant):
        return everywhere if variant == "transformers" else ours

    def vs(variant, base):
        return f"{rate[variant] / rate[base]:.2f}x" if base in rate else "-"

    def of_peak(variant):
        dtype = "bf16" if "bf16" in variant else "fp32"
        if ("TensorFlow", dtype) not in peak_flops:
            return "-"
        return f"{flops(variant) * rate[variant] / peak_flops['TensorFlow', dtype]:.0%} of {dtype}"

    rows = [f"| {v} | {VARIANTS[v][0]}{attention_note(v, info)} | {rate[v]:.2f} | "
            f"{vs(v, 'tf_bf16' if 'bf16' in v else 'tf_fp32')} | {vs(v, 'transformers')} | "
            f"{flops(v) * rate[v] / 1e9:.0f} | {of_peak(v)} |" for v in chosen]
    lines = [
        f"ELECTRA-Small as published (hidden 256, 12 layers, embedding 128, generator_hidden_size 1.0, "
        f"vocab {VOCAB}), seq {SEQ}, batch {args.batch_size}, one fixed synthetic batch; {args.rounds} interleaved "
        f"rounds of {args.steps} steps per variant after {args.warmup} warm-up steps (examples/s: the median "
        f"round), each variant in its own process with 2 threads and passive OpenMP waits. 1-minute load average "
        f"during the rounds: {min(loads):.1f} to {max(loads):.1f} on 2 cores, so every figure is slower than on a "
        "quiet machine; the ratios are what this run compares.",
        "",
        "| variant | system | examples/s | vs TF same precision | vs transformers loop | achieved GFLOP/s | "
        "fraction of TF's measured matmul peak |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    pairs = [("torch_bf16", "tf_bf16", "torch bf16 / TF bf16 (goal >= 1.0x)"),
             ("torch_fp32", "tf_fp32", "torch fp32 / TF fp32"),
             ("torch_fp32", "transformers", "torch fp32 / transformers loop"),
             ("torch_bf16", "transformers", "torch bf16 / transformers loop"),
             ("tf_bf16", "tf_fp32", "TF bf16 / TF fp32"),
             ("torch_bf16", "torch_fp32", "torch bf16 / torch fp32"),
             ("torch_fp32", "torch_fp32_attention", "fp32: default attention / other attention"),
             ("torch_bf16", "torch_bf16_attention", "bf16: default attention / other attention"),
             ("torch_fp32_compile", "torch_fp32", "fp32: torch_compile on / off"),
             ("torch_bf16_compile", "torch_bf16", "bf16: torch_compile on / off")]
    lines += [f"- {label}: **{rate[a] / rate[b]:.2f}x** (ratio of medians; per round {spread(per_round, a, b)})"
              for a, b, label in pairs if a in rate and b in rate]
    for variant in ("torch_fp32_compile", "torch_bf16_compile"):
        if variant in info:
            plain = variant.replace("_compile", "")
            extra = info[variant]["build_seconds"] - info.get(plain, {}).get("build_seconds", 0.0)
            lines.append(f"- {variant}: building and {args.warmup} warm-up steps took "
                         f"{info[variant]['build_seconds']:.0f} s ({extra:.0f} s more than without compiling).")
    skipped = [v for v in VARIANTS if v not in chosen]
    if skipped:
        lines.append(f"- Not run this time: {', '.join(skipped)}.")
    lines.append(f"- Training FLOPs per example (3x forward, pretrain/step_log.py): {ours / 1e9:.1f} GFLOP for "
                 f"both backends (the generator's vocabulary head runs only at the {config(1).max_predictions_per_seq} "
                 f"masked positions, as upstream ELECTRA); the transformers loop does {everywhere / 1e9:.1f} GFLOP "
                 f"because ElectraForMaskedLM projects all {SEQ} positions onto the vocabulary.")
    shares = [f"{v} {info[v]['matmul_share']:.0%} in matmuls, {info[v]['cast_share']:.0%} in casts"
              for v in chosen if "matmul_share" in info[v]]
    if shares:
        lines.append("- Where the time goes (one profiled step each; op time): " + "; ".join(shares) + ".")
    if peak_flops:
        lines.append("- Matmul peak measured in this run, once per round between the timed steps (2048^3): "
                     + "; ".join(f"{lib} {dtype} {value / 1e9:.0f} GFLOP/s"
                                 for (lib, dtype), value in sorted(peak_flops.items())) + ".")
    return "\n".join(lines)


def attention_note(variant, info):
    used = info.get(variant, {}).get("attention")
    return f" ({'SDPA' if used == 'sdpa' else 'explicit softmax'} attention)" if used else ""


if __name__ == "__main__":
    main()
