"""bench/bench_pretraining_gpu.py: its CPU fallback runs the torch backend's step, and its peak table."""
import os
import subprocess
import sys

from bench.bench_pretraining_gpu import datasheet_peak

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_cpu_fallback_times_a_tiny_model_for_two_steps_and_prints_the_anchor():
    run = subprocess.run([sys.executable, "-m", "bench.bench_pretraining_gpu", "--tiny", "--sizes", "small",
                          "--seconds", "0", "--min_steps", "2", "--warmup", "1", "--no_write"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES=""))
    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("| ELECTRA-Small (--tiny sizes) |")]
    assert len(rows) == 2  # printed as measured, then in the table
    cells = [c.strip() for c in rows[-1].strip("|").split("|")]
    assert cells[1] == "bf16 autocast" and cells[2] == "16" and cells[7] == "2"
    assert float(cells[3]) > 0 and cells[4].endswith("FLOP/s") and cells[6].endswith("%")
    assert "Device: CPU (no GPU visible to torch)" in run.stdout
    assert "about 955 sequences/s" in run.stdout


def test_datasheet_peaks_by_device_name_and_dtype():
    assert datasheet_peak("NVIDIA A100-SXM4-80GB", "bf16") == 312e12
    assert datasheet_peak("NVIDIA H100 PCIe", "fp16") == 756e12
    assert datasheet_peak("NVIDIA H100 80GB HBM3", "bf16") == 989e12
    assert datasheet_peak("NVIDIA L4", "bf16") == 121e12 and datasheet_peak("NVIDIA L40S", "bf16") == 362e12
    assert datasheet_peak("Tesla T4", "bf16") is None and datasheet_peak("Tesla T4", "fp16") == 65e12
    assert datasheet_peak("Some Future GPU", "fp16") is None
