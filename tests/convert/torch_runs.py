"""The torch backend tests' dataset built from data/sample and their pretraining command line
(tests/pretrain/torch_backend/conftest.py), for the conversion tests of torch model directories."""
import importlib.util
import os

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pretrain", "torch_backend",
                     "conftest.py")
_spec = importlib.util.spec_from_file_location("torch_backend_conftest", _PATH)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)

ROOT, MAX_LEN = _module.ROOT, _module.MAX_LEN
sample_data = _module.sample_data  # session fixture
pretrain_command, quiet_env = _module.pretrain_command, _module.quiet_env
