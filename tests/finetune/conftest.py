"""Fixtures for the fine-tuning tests: a tiny random ELECTRA directory, YAML writing, one thread."""
import os
import sys

os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# A `tests` package in site-packages shadows ours, so helpers are imported by their own name.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pytest  # noqa: E402
import yaml  # noqa: E402

from finetune_helpers import make_tiny_electra  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return make_tiny_electra(str(tmp_path_factory.mktemp("tiny-electra")))


@pytest.fixture
def write_yaml(tmp_path):
    """write_yaml(values, name="run.yaml") -> path of a YAML file in tmp_path."""

    def write(values, name="run.yaml"):
        path = tmp_path / name
        path.write_text(yaml.safe_dump(values, allow_unicode=True, sort_keys=False), encoding="utf-8")
        return str(path)

    return write


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    # Tiny models gain nothing from a second thread, and on a machine shared with other
    # jobs OpenMP's spinning threads make each step many times slower.
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def nsmc_model(tmp_path_factory):
    """A best_model/ fine-tuned on real NSMC reviews (serving_models.make_nsmc_model)."""
    from serving_models import SHARED, make_nsmc_model

    if not os.path.isdir(SHARED):
        pytest.skip("../shared/data is not on this machine")
    return make_nsmc_model(str(tmp_path_factory.mktemp("nsmc-model")))


@pytest.fixture(scope="session")
def pair_model(tmp_path_factory):
    from serving_models import make_pair_model

    return make_pair_model(str(tmp_path_factory.mktemp("pair-model")))


@pytest.fixture(scope="session")
def ner_model(tmp_path_factory):
    from serving_models import make_ner_model

    return make_ner_model(str(tmp_path_factory.mktemp("ner-model")))
