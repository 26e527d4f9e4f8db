"""torchrun --nproc_per_node 2 run_pretraining.py --backend torch: two gloo processes pretrain one
model on disjoint halves of the data, accumulating gradients over micro-batches; rank 0 alone
logs, checkpoints and evaluates."""
import os
import subprocess
import sys

import pytest
import torch

from pretrain import layout

from .conftest import pretrain_command, quiet_env

STEPS = 4


@pytest.mark.slow  # two processes start torch and pretrain: about 40 s on this busy 2-core machine
def test_two_processes_pretrain_and_report(sample_data, tmp_path):
    model_dir = str(tmp_path / "model")
    # tiny.json's global batch of 16: 2 processes x 2 accumulated micro-batches of 4 (DDP's no_sync path).
    command = pretrain_command(sample_data, model_dir, "--backend", "torch", num_train_steps=STEPS,
                               save_checkpoints_steps=2, num_warmup_steps=1, do_eval=True, num_eval_steps=2, seed=5,
                               gradient_accumulation_steps=2)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    done = subprocess.run(torchrun + command[1:], env=quiet_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    log = done.stdout.splitlines()
    assert log.count("backend torch: --backend torch") == 1  # rank 0's log only
    devices = [line for line in log if line.startswith("devices: ")]
    assert len(devices) == 1 and devices[0].startswith("devices: 2 processes (torchrun), each on ")
    assert len([line for line in log if line.startswith(f"train step {STEPS}/{STEPS}: ")]) == 1
    assert any(line.startswith("discriminator on real tokens") for line in log)
    assert os.path.isfile(os.path.join(model_dir, "results", "unsup_results.txt"))
    assert not os.path.exists(os.path.join(model_dir, ".lock"))

    saved = torch.load(layout.torch_checkpoint_path(model_dir, STEPS), weights_only=True)
    assert saved["world_size"] == 2
    ranks = [state["data"] for state in saved["ranks"]]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world_size"] == 2 for r in ranks)
    # Each rank masks with its own generator, saved with it for the resume.
    masking = [state["rng"]["masking"] for state in saved["ranks"]]
    assert not torch.equal(masking[0], masking[1])
