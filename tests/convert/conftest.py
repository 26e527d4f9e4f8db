"""Setup for the conversion tests: tiny_checkpoint importable, transformers without TF models."""
import os
import sys

os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# A `tests` package in site-packages shadows ours, so the helper is imported by its own name.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


from torch_runs import sample_data  # noqa: E402,F401  (a session fixture: data/sample through the real stages)
