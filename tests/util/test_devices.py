"""util.devices: the start-up device line, and one error line for GPUs the frameworks cannot see."""
import json
import os
import subprocess
import sys

import pytest

from util.devices import finetuning_device_line, pretraining_devices, tensorflow_build, torch_build
from util.errors import UserInputError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = os.path.join(ROOT, "conf", "pretrain", "tiny.json")


def tf_sees_gpu():
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def torch_sees_gpu():
    import torch

    return torch.cuda.is_available()


def pretraining_config(**overrides):
    from configure_pretraining import PretrainingConfig

    with open(TINY) as f:
        hparams = json.load(f)
    hparams.update(overrides)
    return PretrainingConfig("m", "d", **hparams)


@pytest.mark.skipif(tf_sees_gpu(), reason="this machine has a GPU TensorFlow can use")
@pytest.mark.parametrize("overrides, asked", [({"distribution": "mirrored"}, "distribution mirrored"),
                                              ({"num_gpus": 2}, "num_gpus 2"),
                                              ({"distribution": "mirrored", "num_gpus": 1}, "num_gpus 1")])
def test_asking_for_gpus_tensorflow_cannot_see_is_one_line(overrides, asked):
    with pytest.raises(UserInputError) as e:
        pretraining_devices(pretraining_config(**overrides))
    message = str(e.value)
    assert message.startswith(f"{asked} needs GPUs, but TensorFlow sees 0 on this machine (installed: ")
    assert tensorflow_build() in message and "requirements-gpu.txt" in message and "\n" not in message


@pytest.mark.skipif(tf_sees_gpu(), reason="this machine has a GPU TensorFlow can use")
def test_a_cpu_run_says_so():
    assert tensorflow_build().endswith(", a CPU-only build")  # requirements.txt installs tensorflow-cpu
    assert pretraining_devices(pretraining_config()) == f"devices: CPU, TensorFlow sees no GPU ({tensorflow_build()})"
    # Mirrored over logical CPU devices is asked for explicitly (tests, benchmarks): allowed.
    assert pretraining_devices(pretraining_config(distribution="mirrored", cpu_replicas=2)).startswith("devices: CPU")


def test_run_pretraining_stops_before_training_on_a_gpu_request(tmp_path):
    if tf_sees_gpu():
        pytest.skip("this machine has a GPU TensorFlow can use")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "run_pretraining.py", "--data_dir", str(tmp_path / "data"),
                           "--model_name", str(tmp_path / "model"), "--hparams", TINY, "--distribution", "mirrored"],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "distribution mirrored needs GPUs" in errors[0], done.stderr[-2000:]
    assert not (tmp_path / "model").exists()


@pytest.mark.skipif(torch_sees_gpu(), reason="this machine has a GPU torch can use")
def test_fine_tuning_names_its_device_and_refuses_fp16_without_cuda(tmp_path):
    import torch
    import yaml

    from finetune.config import load_config
    from finetune.trainer import run

    config_values = {"no_cuda": False}
    assert finetuning_device_line(torch.device("cpu"), type("C", (), config_values)) == \
        f"device: CPU, torch sees no GPU ({torch_build()})"
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"task": "nsmc_x", "model_name_or_path": str(tmp_path), "fp16": True,
                                    "data_dir": os.path.join(ROOT, "data", "finetune_sample"),
                                    "train_file": "sample_reviews_train.txt", "do_eval": False,
                                    "ckpt_dir": str(tmp_path / "ckpt")}))
    with pytest.raises(UserInputError) as e:
        run(load_config(str(path)))
    assert f"fp16 needs a CUDA device, but torch sees none (installed: {torch_build()})" in str(e.value)
    assert "pip install torch==2.13.0" in str(e.value)
