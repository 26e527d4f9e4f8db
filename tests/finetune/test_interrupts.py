"""run_finetune.py stopped by SIGTERM (a scheduler's stop) after its first checkpoint: one
"interrupted" line, exit 143, nothing half-written, and the same YAML resumes from that checkpoint."""
import json
import os
import signal

import pytest
import yaml

from finetune import checkpoints

from finetune_helpers import ROOT, tiny_run_config
from process_tree import Script


def last_line(text):
    return [line for line in text.replace("\r", "\n").splitlines() if line.strip()][-1]


@pytest.mark.slow
def test_sigterm_ends_in_one_line_and_the_run_resumes(tmp_path, tiny_model_dir):
    settings = tiny_run_config(tiny_model_dir, tmp_path / "ckpt", num_train_epochs=3, logging_steps=10,
                               save_steps=10, num_threads=1)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(settings, allow_unicode=True, sort_keys=False), encoding="utf-8")
    out = tmp_path / "ckpt" / "nsmc_tiny"
    args = [os.path.join(ROOT, "run_finetune.py"), "--config_file", str(path)]
    run = Script(tmp_path, args, name="first")
    code, _ = run.stop(signal.SIGTERM, after=lambda: (out / "checkpoint-20" / checkpoints.STATE).is_file(),
                       what="checkpoint-20")
    assert code == 128 + signal.SIGTERM, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    assert last_line(run.stderr) == "interrupted (SIGTERM)"
    assert not (out / "checkpoint-57").exists(), "the run finished before the signal"
    assert not [p for p in os.listdir(out) if p.startswith(".")], "no temporary and no lock left"

    again = Script(tmp_path, args, name="again")
    try:
        assert again.wait() == 0, again.stderr
    finally:
        again.kill_all()
    resumed = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert resumed["resumed_from"] >= 20 and resumed["train"]["steps"] == 57
