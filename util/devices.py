"""Which devices a run will use, said at start, and one line when it asks for a GPU it cannot have.

A GPU user who installed requirements.txt has TensorFlow's CPU-only build (``tensorflow-cpu``)
and would otherwise pretrain on the CPU without a word; a CPU-only torch build does the same
to fine-tuning. Frameworks are imported only by the function that needs them.
"""
from importlib import metadata

from util.errors import UserInputError

TF_GPU_INSTALL = ("for the GPU build: pip install -r requirements-gpu.txt (tensorflow[and-cuda]==2.15.1, "
                  "docs/pretraining.md)")
TORCH_GPU_INSTALL = "for the CUDA build: pip install torch==2.13.0 from PyPI on Linux (docs/install.md)"


def _installed(*names):
    for name in names:
        try:
            return f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return None


def tensorflow_build():
    """'tensorflow-cpu 2.15.1, a CPU-only build' or 'tensorflow 2.15.1, built with CUDA'."""
    import tensorflow as tf

    name = _installed("tensorflow-cpu", "tensorflow", "tensorflow-gpu") or f"tensorflow {tf.__version__}"
    return f"{name}, {'built with CUDA' if tf.test.is_built_with_cuda() else 'a CPU-only build'}"


def torch_build():
    """'torch 2.13.0+cpu, a CPU-only build' or 'torch 2.13.0, built with CUDA 12.8'."""
    import torch

    cuda = torch.version.cuda
    return f"torch {torch.__version__}, " + (f"built with CUDA {cuda}" if cuda else "a CPU-only build")


def pretraining_devices(config):
    """The one start-up line naming the devices pretraining will use; a UserInputError when the
    config asks for GPUs (``distribution: mirrored`` with no ``cpu_replicas``, or ``num_gpus``)
    that TensorFlow cannot see."""
    import tensorflow as tf

    if config.use_tpu:
        return f"devices: TPU {config.tpu_name or '(local)'} with {config.num_tpu_cores} cores"
    gpus = [d.name.replace("/physical_device:", "") for d in tf.config.list_physical_devices("GPU")]
    wanted = config.num_gpus or 0
    if config.distribution == "mirrored" and config.cpu_replicas <= 1 and config.num_gpus is None:
        wanted = max(wanted, 1)
    if wanted > len(gpus):
        asked = f"num_gpus {config.num_gpus}" if config.num_gpus else f"distribution {config.distribution}"
        raise UserInputError(f"{asked} needs GPUs, but TensorFlow sees {len(gpus)} on this machine "
                             f"(installed: {tensorflow_build()}); {TF_GPU_INSTALL}")
    if gpus:
        used = gpus[:config.num_gpus] if config.num_gpus else gpus
        return f"devices: {len(used)} GPU(s) {', '.join(used)} ({tensorflow_build()})"
    return f"devices: CPU, TensorFlow sees no GPU ({tensorflow_build()})"


def finetuning_device_line(device, config):
    """The one start-up line naming the device fine-tuning will use, and why."""
    import torch

    if device.type == "cuda":
        return f"device: {device} ({torch.cuda.get_device_name(device)}; {torch_build()})"
    if config.no_cuda:
        return f"device: CPU (no_cuda: true; {torch_build()})"
    return f"device: CPU, torch sees no GPU ({torch_build()})"


def require_cuda(what, where, alternative=""):
    """A UserInputError for a setting that needs CUDA on a machine where torch sees none."""
    raise UserInputError(f"{where}: {what} needs a CUDA device, but torch sees none (installed: {torch_build()}); "
                         f"{TORCH_GPU_INSTALL}{alternative}")
