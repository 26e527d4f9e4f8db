"""pytorch_convert.py stopped by SIGTERM while its outputs are still temporaries: one
"interrupted" line, exit 143, and neither an output nor a temporary left."""
import os
import signal

import pytest

from process_tree import ROOT, Script
from tiny_checkpoint import bert_config, make_model_dir


@pytest.mark.slow
def test_sigterm_mid_conversion_leaves_nothing(tmp_path):
    # Big enough that the generator and the parity check are still to come after the discriminator.
    size = dict(bert_config(128, 6, 2, 64, 8000, max_positions=128), intermediate_size=512)
    model_dir = make_model_dir(str(tmp_path / "model"), size, dict(size), scale=0.05)
    out = tmp_path / "out"
    out.mkdir()
    run = Script(tmp_path, [os.path.join(ROOT, "pytorch_convert.py"), "--tf_ckpt_path", model_dir,
                            "--pt_discriminator_path", str(out / "d"), "--pt_generator_path", str(out / "g")],
                 name="convert")
    code, _ = run.stop(signal.SIGTERM, after=lambda: "discriminator: converted" in run.stdout,
                       what="the discriminator's conversion")
    assert code == 128 + signal.SIGTERM, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    assert run.stderr.strip().splitlines()[-1] == "interrupted (SIGTERM)"
    assert os.listdir(out) == [], "no .d.*.tmp, no half-made d or g"
