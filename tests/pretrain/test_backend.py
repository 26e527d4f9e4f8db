"""Which backend runs and why, and the hparams each one refuses (pretrain/backend.py)."""
import json
import os

import pytest

from configure_pretraining import PretrainingConfig
from pretrain import backend
from util.errors import UserInputError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def config(**hparams):
    return PretrainingConfig("m", "d", **hparams)


def test_tf_where_it_is_installed_torch_where_not_or_under_torchrun(monkeypatch):
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    monkeypatch.setattr(backend, "installed", lambda module: True)
    assert backend.choose() == ("tf", "TensorFlow is installed and --backend was not given (--backend torch for "
                                      "the PyTorch loop)")
    assert backend.choose("torch") == ("torch", "--backend torch")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "1")
    assert backend.choose()[0] == "torch"
    monkeypatch.delenv("TORCHELASTIC_RUN_ID")
    monkeypatch.setattr(backend, "installed", lambda module: module != "tensorflow")
    assert backend.choose()[0] == "torch"
    with pytest.raises(UserInputError, match=r"^--backend tf needs TensorFlow 2\.15, which is not installed here"):
        backend.choose("tf")


def test_the_published_configs_suit_both_backends():
    for name in ("small_config_kor_wordpiece_train.json", "tiny.json"):
        with open(os.path.join(ROOT, "conf", "pretrain", name)) as f:
            published = config(**json.load(f))
        for chosen in backend.BACKENDS:
            backend.check_hparams(published, chosen)


def test_a_value_that_asks_for_nothing_is_accepted_by_either():
    idle = config(distribution="none", use_tpu=False, torch_compile=False, gradient_accumulation_steps=1)
    for chosen in backend.BACKENDS:
        backend.check_hparams(idle, chosen)


def test_every_foreign_hparam_is_named_at_once():
    with pytest.raises(UserInputError) as error:
        backend.check_hparams(config(tpu_name="v3", cpu_replicas=2), "torch")
    assert str(error.value) == ("--hparams: tpu_name 'v3', cpu_replicas 2: honoured only by the tf backend, and this "
                                "run uses --backend torch: Cloud TPU needs the TF backend; torchrun --nproc_per_node N "
                                "with gloo runs CPU processes; remove them, or run --backend tf")
    with pytest.raises(UserInputError, match=r"gradient_accumulation_steps 4: honoured only by the torch backend"):
        backend.check_hparams(config(gradient_accumulation_steps=4), "tf")


def test_run_pretraining_makes_openmp_wait_passively_before_torch_loads_unless_told_otherwise():
    import subprocess
    import sys

    code = "import os, sys, run_pretraining; print('torch' in sys.modules, os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    for given, expected in ((None, "False PASSIVE"), ("ACTIVE", "False ACTIVE")):
        run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                             env=dict(env, **({"OMP_WAIT_POLICY": given} if given else {})))
        assert run.stdout.strip() == expected
