"""The torch backend's network, optimizer and TF-name tables run without importing TensorFlow."""
import subprocess
import sys

from .tiny_config import ROOT

SCRIPT = """
import sys
import torch
sys.modules["tensorflow"] = None  # any import of TensorFlow now fails
from pretrain.torch_backend.metrics import batch_accuracies
from pretrain.torch_backend.model import ElectraPretrainer
from pretrain.torch_backend.optim import build_optimizer, build_scheduler, clip_by_global_norm
from pretrain.torch_backend.tf_checkpoint import load_tf_checkpoint_into, tf_checkpoint_arrays
sys.path.insert(0, {tests!r})
from tiny_config import make_config

config = make_config({vocab!r})
model = ElectraPretrainer(config)
optimizer = build_optimizer(model, config)
scheduler = build_scheduler(optimizer, config)
ids = torch.randint(10, config.vocab_size, (2, 32))
out = model(ids, torch.ones_like(ids), torch.zeros_like(ids), generator=torch.Generator().manual_seed(0))
out["total_loss"].backward()
clip_by_global_norm(model.parameters())
optimizer.step()
scheduler.step()
load_tf_checkpoint_into(model, tf_checkpoint_arrays(model, optimizer), optimizer)
print(sorted(batch_accuracies(out)))
"""


def test_a_training_step_and_the_tf_names_need_no_tensorflow(sample_vocab_dir):
    script = SCRIPT.format(tests=f"{ROOT}/tests/pretrain/torch_backend", vocab=sample_vocab_dir)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "disc_auc_real" in result.stdout
