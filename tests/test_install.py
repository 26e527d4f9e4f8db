"""Installing: the Makefile's interpreter check and the requirement files that must agree."""
import os
import stat
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FAKE_PYTHON = """#!/bin/sh
# Answers as a Python {version} would to the Makefile's check; anything else would build a venv.
case "$1" in
  -V) echo "Python {version}" ;;
  -c) exit {check_status} ;;
  *) touch "{marker}" ;;
esac
"""


def fake_python(directory, name, version, check_status):
    path = directory / name
    path.write_text(FAKE_PYTHON.format(version=version, check_status=check_status, marker=directory / "venv_made"))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def make_setup(tmp_path, *variables, path=None):
    env = dict(os.environ, PATH=path or os.environ["PATH"])
    return subprocess.run(["make", "--no-print-directory", "setup", f"VENV={tmp_path / 'venv'}", *variables],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)


def test_a_python_tensorflow_does_not_support_stops_before_the_venv(tmp_path):
    python = fake_python(tmp_path, "python3", "3.12.1", check_status=1)
    result = make_setup(tmp_path, f"PYTHON3={python}")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: TensorFlow 2.15 needs Python 3.9-3.11, but PYTHON3={python} is Python 3.12.1; "
                      "install python3.11 and run e.g. make demo PYTHON3=python3.11"]
    assert not (tmp_path / "venv").exists() and not (tmp_path / "venv_made").exists()


def test_python3_11_on_the_path_is_picked_up(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_python(bin_dir, "python3.11", "3.11.9", check_status=0)
    dry_run = subprocess.run(["make", "--no-print-directory", "-n", "setup", f"VENV={tmp_path / 'venv'}"], cwd=ROOT,
                             capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}"))
    assert f"{bin_dir / 'python3.11'} -m venv" in dry_run.stdout, dry_run.stdout


def requirement_lines(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def test_the_gpu_requirements_are_the_cpu_ones_but_tensorflow():
    """requirements-gpu.txt repeats requirements.txt's pins; only TensorFlow's build differs."""
    cpu, gpu = requirement_lines("requirements.txt"), requirement_lines("requirements-gpu.txt")
    assert [line for line in cpu if not line.startswith("tensorflow-cpu==")] == \
        [line for line in gpu if not line.startswith("tensorflow[and-cuda]==")]
    assert cpu.count("tensorflow-cpu==2.15.1") == 1 and gpu.count("tensorflow[and-cuda]==2.15.1") == 1
