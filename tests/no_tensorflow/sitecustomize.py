"""On PYTHONPATH, makes an interpreter one without TensorFlow and records who tried to import it.

Python imports ``sitecustomize`` at start-up, in every subprocess too. Each name below maps to
None in ``sys.modules``, so ``import tensorflow`` raises ImportError and
``importlib.util.find_spec("tensorflow")`` returns None, as where TensorFlow is not installed.
An audit hook appends every attempt to the file named by $NO_TENSORFLOW_LOG, one
``name<TAB>file:line`` a line, naming the file whose import statement made it: a project module
that tried (and perhaps swallowed the ImportError) is told apart from a library's optional probe
(tensorboard looks for TensorFlow and falls back to its own stub).
"""
import os
import sys

BLOCKED = ("tensorflow", "tensorflow_estimator", "tf_keras", "keras", "tf2onnx")

for _name in BLOCKED:
    sys.modules[_name] = None


def _importer():
    """file:line of the first frame outside the import machinery and this file."""
    frame = sys._getframe(2)
    while frame is not None and (frame.f_code.co_filename.startswith("<frozen") or
                                 frame.f_code.co_filename == __file__):
        frame = frame.f_back
    return "?" if frame is None else f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _record(event, args):
    if event != "import" or not isinstance(args[0], str) or args[0].split(".")[0] not in BLOCKED:
        return
    log = os.environ.get("NO_TENSORFLOW_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{args[0]}\t{_importer()}\n")


sys.addaudithook(_record)
