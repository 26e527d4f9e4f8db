"""Every stage but TF pretraining and reading TF checkpoints runs where TensorFlow cannot be imported.

Each check runs in a subprocess with tests/no_tensorflow on PYTHONPATH: its sitecustomize makes
``import tensorflow`` fail as on a machine without it, and logs every attempt with the file that
made it. An attempt from the project's own files fails the check even when the stage swallowed
the ImportError; libraries' optional probes (tensorboard's) are allowed. In the TF-free
environment that `make test-torch-stack` builds, TensorFlow is absent for real as well.
"""
import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIM_DIR = os.path.join(ROOT, "tests", "no_tensorflow")

# The stages a user runs; each must at least show its --help without TensorFlow.
STAGES = ["preprocess.py", "build_vocab.py", "build_pretraining_dataset.py", "run_pretraining.py",
          "pytorch_convert.py", "run_finetune.py", "predict.py"]

# The TF network and the TF backend's loop: these import TensorFlow when imported. Every other
# module of these packages, and every top-level module, must import without trying to.
TF_ONLY = {"model.electra_model", "model.masking", "model.modeling", "model.optimization",
           "pretrain.distribution", "pretrain.training", "pretrain.tf_backend.hooks"}
PACKAGES = ["util", "finetune", "convert", "pretrain", "model", "bench"]


def without_tensorflow_env(tmp_path):
    """The environment for a subprocess without TensorFlow, and the file its attempts go to."""
    log = tmp_path / "tensorflow_imports.log"
    path = os.pathsep.join([SHIM_DIR, ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    env = dict(os.environ, PYTHONPATH=path, NO_TENSORFLOW_LOG=str(log), USE_TF="0", HF_HUB_OFFLINE="1",
               OMP_NUM_THREADS="1")
    return env, log


def attempts(log):
    """Every logged attempt to import TensorFlow, as 'name<TAB>file:line'."""
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


def project_attempts(log):
    """The attempts made by the project's own files (not by installed libraries)."""
    return [line for line in attempts(log)
            if line.split("\t")[1].startswith(ROOT + os.sep) and "site-packages" not in line]


def run_python(code, tmp_path, timeout=600):
    """Runs code without TensorFlow: the finished process and its project's import attempts."""
    env, log = without_tensorflow_env(tmp_path)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    return done, project_attempts(log)


def module_names():
    names = [name[:-3] for name in sorted(os.listdir(ROOT)) if name.endswith(".py")]
    for package in PACKAGES:
        for dirpath, _, files in os.walk(os.path.join(ROOT, package)):
            for name in sorted(files):
                if name.endswith(".py") and name != "__init__.py":
                    rel = os.path.relpath(os.path.join(dirpath, name[:-3]), ROOT)
                    names.append(rel.replace(os.sep, "."))
    return sorted(n for n in names if n not in TF_ONLY)


def test_the_shim_blocks_tensorflow_and_logs_a_swallowed_attempt(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text("import importlib.util\n"
                      "assert importlib.util.find_spec('tensorflow') is None\n"
                      "try:\n    import tensorflow.compat.v1\nexcept ImportError:\n    print('blocked')\n")
    env, log = without_tensorflow_env(tmp_path)
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "blocked"
    assert attempts(log)[:1] == [f"tensorflow.compat.v1\t{script}:4"]


@pytest.mark.torch_stack
def test_every_stage_shows_its_help(tmp_path):
    code = ("import runpy, sys\n"
            f"for script in {STAGES!r}:\n"
            "    sys.argv = [script, '--help']\n"
            "    try:\n"
            "        runpy.run_path(script, run_name='__main__')\n"
            "    except SystemExit as e:\n"
            "        assert e.code in (0, None), (script, e.code)\n"
            "    else:\n"
            "        raise AssertionError(script + ': --help did not exit')\n"
            "    print('HELP-OK', script, flush=True)\n")
    done, tried = run_python(code, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [line.split()[1] for line in done.stdout.splitlines() if line.startswith("HELP-OK")] == STAGES
    assert tried == []


@pytest.mark.slow  # imports every module: 25-45 s on a shared 2-core machine
@pytest.mark.torch_stack
def test_modules_outside_the_tf_network_import_without_tensorflow(tmp_path):
    names = module_names()
    code = ("import importlib, sys\n"
            "failed = []\n"
            f"for name in {names!r}:\n"
            "    try:\n"
            "        importlib.import_module(name)\n"
            "    except Exception as e:\n"
            "        failed.append(f'{name}: {type(e).__name__}: {e}')\n"
            "print('\\n'.join(failed))\n")
    done, tried = run_python(code, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "", done.stdout
    assert tried == []


@pytest.mark.torch_stack
@pytest.mark.skipif(os.environ.get("EXPECT_NO_TENSORFLOW") != "1",
                    reason="only in the TF-free environment (make test-torch-stack sets EXPECT_NO_TENSORFLOW=1)")
def test_tensorflow_is_not_installed_here():
    for name in ("tensorflow", "tensorflow_estimator", "keras", "tf2onnx"):
        assert importlib.util.find_spec(name) is None, f"{name} is installed in {sys.prefix}"
    with pytest.raises(ImportError):
        import tensorflow  # noqa: F401


def summary_table(work):
    lines = (work / "summary.md").read_text(encoding="utf-8").splitlines()[2:]
    return dict(line.strip("| ").split(" | ", 1) for line in lines)


@pytest.mark.slow  # the whole chain: 2-4 minutes on a shared 2-core machine
@pytest.mark.torch_stack
def test_the_chain_from_the_sample_corpus_to_onnx_predictions(tmp_path):
    """The README's `make demo` with the PyTorch backend, then ONNX export and predict.py --onnx."""
    import json

    env, log = without_tensorflow_env(tmp_path)
    work = tmp_path / "work"
    # -o: the venv counts as installed; the stages run under this interpreter (PY).
    demo = subprocess.run(["make", "--no-print-directory", "demo", f"WORK={work}", f"PY={sys.executable}",
                           "-o", ".venv/.installed",
                           "BACKEND=torch", "PRETRAIN_STEPS=60"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "--backend torch" in demo.stdout
    table = summary_table(work)
    first, last = (float(part.split()[0]) for part in table["pretraining loss"].split(" → "))
    assert last < first, table["pretraining loss"]
    results = json.loads((work / "finetune" / "nsmc_sample" / "results.json").read_text(encoding="utf-8"))
    assert results, "fine-tuning wrote no results"

    best_model = work / "finetune" / "nsmc_sample" / "best_model"
    onnx_path = tmp_path / "classifier.onnx"
    export = subprocess.run([sys.executable, "-m", "convert.onnx_export", "--model_dir", str(best_model),
                             "--onnx_path", str(onnx_path)], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert export.returncode == 0, export.stderr[-3000:]

    reviews = tmp_path / "reviews.txt"
    with open(os.path.join(ROOT, "data", "finetune_sample", "sample_reviews_test.txt"), encoding="utf-8") as f:
        reviews.write_text("\n".join(line.split("\t")[1] for line in f.read().splitlines()[1:21]) + "\n",
                           encoding="utf-8")
    predictions = {}
    for runtime, extra in (("torch", []), ("onnx", ["--onnx", str(onnx_path)])):
        out = tmp_path / f"{runtime}.jsonl"
        done = subprocess.run([sys.executable, "predict.py", "--model_dir", str(best_model), "--input", str(reviews),
                               "--output", str(out), "--threads", "1", *extra],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        predictions[runtime] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(predictions["torch"]) == 20
    assert [r["label"] for r in predictions["onnx"]] == [r["label"] for r in predictions["torch"]]
    for onnx_record, torch_record in zip(predictions["onnx"], predictions["torch"]):
        assert onnx_record["probabilities"] == pytest.approx(torch_record["probabilities"], abs=1e-4)
    assert project_attempts(log) == []
