"""run_pretraining.py stopped by SIGTERM mid-training (a scheduler's stop): one "interrupted"
line, exit 143, the lock released, and the checkpoints written so far intact."""
import json
import os
import signal

import pytest

from .conftest import ROOT, tiny_hparams
from process_tree import Script


@pytest.mark.slow
def test_sigterm_mid_training_ends_in_one_line(tmp_path, tiny_data):
    model_dir = tmp_path / "model"
    hparams = json.dumps(tiny_hparams(num_train_steps=1000, iterations_per_loop=5, save_checkpoints_steps=10))
    run = Script(tmp_path, [os.path.join(ROOT, "run_pretraining.py"), "--data_dir", tiny_data, "--model_name",
                            str(model_dir), "--hparams", hparams], name="pretrain")
    code, _ = run.stop(signal.SIGTERM, after=lambda: "train step" in run.stdout, what="the first step line")
    assert code == 128 + signal.SIGTERM, run.stderr[-2000:]
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    assert run.stderr.strip().splitlines()[-1] == "interrupted (SIGTERM)"
    assert not (model_dir / ".lock").exists()
