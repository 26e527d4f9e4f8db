"""Which pre-training backend runs, and the hparams only one of them honours.

``--backend tf`` is the TF1-compat graph under TPUEstimator (Cloud TPU, ``distribution``
mirrored/multi_worker, Python 3.9-3.11); ``--backend torch`` is the PyTorch loop
(pretrain/torch_backend/: GPUs, torchrun, any Python torch installs on). Left unset, a run
takes TF where TensorFlow is installed and torch where it is not; a process started by
torchrun takes torch, since the TF backend spreads over devices by itself. An hparam the
chosen backend would not honour is an error naming it, never ignored. No TensorFlow or torch
is imported here.
"""
import importlib.util
import os

from util.errors import UserInputError

BACKENDS = ("tf", "torch")

# hparam -> the value that asks for nothing: a run of the other backend satisfies it as it is.
TF_ONLY = {"use_tpu": False, "num_tpu_cores": 8, "tpu_name": None, "tpu_zone": None, "gcp_project": None,
           "tpu_job_name": None, "distribution": "none", "num_gpus": None, "cpu_replicas": 1}
TORCH_ONLY = {"torch_compile": False, "gradient_accumulation_steps": 1}

# What the other backend offers instead, said beside a rejected hparam.
TORCH_INSTEAD = {
    "distribution": "torchrun --nproc_per_node N run_pretraining.py --backend torch ... trains data parallel",
    "num_gpus": "torchrun --nproc_per_node N starts one process per GPU",
    "cpu_replicas": "torchrun --nproc_per_node N with gloo runs CPU processes",
}
TPU_NOTE = "Cloud TPU needs the TF backend"


def installed(module):
    return importlib.util.find_spec(module) is not None


def under_torchrun():
    return "TORCHELASTIC_RUN_ID" in os.environ


def choose(requested=None):
    """(backend, why) for ``--backend`` (None when not given); a UserInputError when it cannot run here."""
    if requested == "tf":
        if not installed("tensorflow"):
            raise UserInputError("--backend tf needs TensorFlow 2.15, which is not installed here (it installs on "
                                 "Python 3.9-3.11: pip install -r requirements.txt); --backend torch runs without it")
        return "tf", "--backend tf"
    if requested == "torch":
        if not installed("torch"):
            raise UserInputError("--backend torch needs PyTorch, which is not installed here "
                                 "(pip install -r requirements-cpu.txt or the GPU build, docs/pretraining.md)")
        return "torch", "--backend torch"
    if requested is not None:
        raise UserInputError(f"--backend {requested!r} is not one of {', '.join(BACKENDS)}")
    if under_torchrun():
        return choose("torch")[0], "started by torchrun (--backend was not given)"
    if installed("tensorflow"):
        return "tf", "TensorFlow is installed and --backend was not given (--backend torch for the PyTorch loop)"
    if installed("torch"):
        return "torch", "TensorFlow is not installed (--backend tf needs TensorFlow 2.15 on Python 3.9-3.11)"
    raise UserInputError("neither TensorFlow nor PyTorch is installed: pip install -r requirements.txt "
                         "(TensorFlow, Python 3.9-3.11) or the torch requirements (docs/pretraining.md)")


def foreign_hparams(config, backend):
    """{hparam: value} the config asks for that ``backend`` does not honour."""
    other = TORCH_ONLY if backend == "tf" else TF_ONLY
    return {key: getattr(config, key) for key, idle in other.items()
            if key in config.user_set and getattr(config, key) != idle}


def check_hparams(config, backend, flags=None):
    """One line naming every hparam the other backend alone honours, with what to do instead.

    ``flags``: {hparam: command-line flag} for those set by a flag rather than in --hparams.
    """
    foreign = foreign_hparams(config, backend)
    if not foreign:
        return
    flags = flags or {}
    owner = "torch" if backend == "tf" else "tf"
    shown = ", ".join(f"{flags[key]}{'' if isinstance(value, bool) else f' {value}'}" if key in flags
                      else f"{key} {value!r}" for key, value in foreign.items())
    if backend == "torch":
        hints = sorted({TPU_NOTE if key.startswith(("tpu", "use_tpu", "num_tpu", "gcp")) else TORCH_INSTEAD[key]
                        for key in foreign})
    else:
        hints = []
    advice = "; ".join(hints + [f"remove {'it' if len(foreign) == 1 else 'them'}, or run --backend {owner}"])
    raise UserInputError(f"{config._source}: {shown}: honoured only by the {owner} backend, and this run uses "
                         f"--backend {backend}: {advice}")
