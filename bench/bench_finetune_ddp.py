"""Data-parallel fine-tuning: training examples/s of 1 process vs 2 gloo processes (torchrun).

Same random-init ELECTRA-Small as bench_finetune (hidden 256, 12 layers, 4 heads, embedding
128, 16k WordPiece vocab learned from NSMC), same NSMC sample, same GLOBAL batch (32: one
process x 32, or two processes x 16 under torchrun with gloo), one epoch, fp32, lr 5e-5.
Each run is its own ``run_finetune.py`` process tree; the figure is results.json's
``train.examples_per_second`` (training only: no start-up, no evaluation). Rounds alternate
the configurations so the load from other jobs falls on both alike; the median is reported.

    python -m bench.bench_finetune_ddp [--examples 320] [--rounds 2]
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile

os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.bench_finetune import SEQ_LEN, make_model_dir, read_nsmc  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLOBAL_BATCH = 32


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_yaml(work, name, model_dir, data_dir, per_device, threads):
    path = os.path.join(work, f"{name}.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"task: nsmc_bench\ndata_dir: {data_dir}\ntrain_file: ratings_train.txt\n"
                f"ckpt_dir: {work}/ckpt_{name}\nmodel_name_or_path: {model_dir}\nmax_seq_len: {SEQ_LEN}\n"
                f"train_batch_size: {per_device}\nlearning_rate: 5e-5\nnum_train_epochs: 1\ndo_eval: false\n"
                f"seed: 42\nnum_threads: {threads}\n")
    return path


def train_rate(yaml_path, processes, work, name):
    """examples/s of one run; ``processes`` > 1 runs it under torchrun."""
    if processes > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                   "--master_addr", "127.0.0.1", "--master_port", str(free_port())]
    else:
        command = [sys.executable]
    command += ["run_finetune.py", "--config_file", yaml_path]
    env = dict(os.environ, OMP_NUM_THREADS="1", USE_TF="0")
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    with open(os.path.join(work, f"ckpt_{name}", "nsmc_bench", "results.json"), encoding="utf-8") as f:
        train = json.load(f)["train"]
    return train["examples_per_second"], train["examples"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=320)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from bench.report import write_section

    rows, all_rows = read_nsmc(args.examples)
    runs = (  # name, processes, per-device batch, threads per process
        ("1 process x 1 thread, batch 32", 1, GLOBAL_BATCH, 1),
        ("2 gloo processes x 1 thread, batch 16 each", 2, GLOBAL_BATCH // 2, 1),
        ("1 process x 2 threads, batch 32", 1, GLOBAL_BATCH, 2),
    )
    rates = {name: [] for name, *_ in runs}
    with tempfile.TemporaryDirectory() as work:
        model_dir = os.path.join(work, "electra-small")
        os.makedirs(model_dir)
        make_model_dir(model_dir, all_rows[:30000])
        data_dir = os.path.join(work, "data")
        os.makedirs(data_dir)
        with open(os.path.join(data_dir, "ratings_train.txt"), "w", encoding="utf-8") as f:
            f.write("id\tdocument\tlabel\n" + "".join("\t".join(r) + "\n" for r in rows))
        for round_ in range(args.rounds):
            for i, (name, processes, per_device, threads) in enumerate(runs):
                key = f"r{round_}_{i}"
                path = write_yaml(work, key, model_dir, data_dir, per_device, threads)
                rate, examples = train_rate(path, processes, work, key)
                rates[name].append(rate)
                print(f"round {round_ + 1}: {name}: {rate:.1f} examples/s ({examples} examples)", flush=True)

    medians = {name: statistics.median(values) for name, values in rates.items()}
    baseline = medians[runs[0][0]]
    table = "| run | train examples/s (median) | rounds | vs 1 process x 1 thread |\n|---|---:|---|---:|\n" + "".join(
        f"| {name} | {medians[name]:.1f} | {', '.join(f'{v:.1f}' for v in rates[name])} | "
        f"{medians[name] / baseline:.2f}× |\n" for name in rates)
    ddp = medians[runs[1][0]]
    body = (
        f"Training throughput of `run_finetune.py` under `torchrun --nproc_per_node 2` (gloo, CPU) against "
        f"one process, on {args.examples} examples sampled from NSMC's `ratings_train.txt`, max_seq_len "
        f"{SEQ_LEN}, one epoch, global batch {GLOBAL_BATCH}, random-init ELECTRA-Small (hidden 256, "
        f"12 layers), fp32, {args.rounds} alternating rounds, each run its own process tree.\n\n"
        f"{table}\n"
        f"**Ratio 2 processes / 1 process (1 thread each): {ddp / baseline:.2f}×.**\n\n"
        "Read this as correctness and overhead, not speedup: the machine has 2 CPU cores, "
        "so the two replicas compete for the same cores that one process with "
        "2 threads uses (third row: the single-process way to use both cores, through torch's intra-op "
        "threads, which on small per-op work and contended cores can lose to one thread). Each replica "
        "also pays gloo's all-reduce of every gradient (~12M parameters) per step over loopback. Single "
        "figures swing between rounds when other work shares the machine (see the load average); compare the "
        "rounds, not only the medians. On N GPUs with NCCL the replicas do not share compute, and the all-reduce "
        "overlaps the backward pass.\n"
    )
    write_section("finetune_ddp", "Fine-tuning data-parallel: 1 vs 2 processes (run_finetune.py under torchrun)",
                  f"python -m bench.bench_finetune_ddp --examples {args.examples} --rounds {args.rounds}", body)


if __name__ == "__main__":
    main()
