"""run_finetune.py under torchrun: two gloo processes on the CPU train what one process trains
on the same global batch, only rank 0 writes, and evaluation counts every example once."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest
import torch

from finetune import distributed
from finetune.config import load_config
from finetune.data import eval_batches, feature_lengths
from finetune.outputs import RunOutputs
from finetune.trainer import run

from finetune_helpers import ROOT, SAMPLE_DIR, tiny_run_config

WORLD = 2
PER_DEVICE = 10  # x 2 processes = the single run's batch of 20; 300 training examples = 15 global batches
TEST_EXAMPLES = 99  # odd, so the two evaluation shares differ in size
# Weights after training agree to ~1e-7 (float32 sums taken in another order: two half-batch
# means averaged by all-reduce instead of one mean, batches padded to other widths, both masked
# exactly). 1e-5 leaves room for BLAS kernels picked by shape, yet is 1/100 of how far training
# moves the weights (asserted below): one example more or less, or a sum instead of a mean, fails it.
WEIGHT_TOLERANCE = 1e-5


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def torchrun(config_path, timeout=240):
    """Run run_finetune.py under torchrun with 2 local CPU processes; (returncode, stdout, stderr)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(WORLD),
               "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
               "run_finetune.py", "--config_file", config_path]
    env = dict(os.environ, OMP_NUM_THREADS="1", USE_TF="0")
    launcher = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    try:
        out, err = launcher.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"torchrun did not finish in {timeout} s")
    finally:
        if launcher.poll() is None:  # timed out or interrupted
            # torchrun starts each worker in its own session: stop the workers by id, then torchrun.
            for pid in children(launcher.pid) + [launcher.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            launcher.communicate()
    return launcher.returncode, out, err


@pytest.fixture(scope="module")
def no_dropout_model(tiny_model_dir, tmp_path_factory):
    """The tiny ELECTRA without dropout: with dropout the two runs would draw different masks."""
    directory = str(tmp_path_factory.mktemp("tiny-electra-no-dropout"))
    shutil.copytree(tiny_model_dir, directory, dirs_exist_ok=True)
    path = os.path.join(directory, "config.json")
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(config, f)
    return directory


def write_data(directory):
    shutil.copy(os.path.join(SAMPLE_DIR, "sample_reviews_train.txt"), directory)
    with open(os.path.join(SAMPLE_DIR, "sample_reviews_test.txt"), encoding="utf-8") as f:
        lines = f.readlines()[: 1 + TEST_EXAMPLES]
    with open(os.path.join(directory, "sample_reviews_test.txt"), "w", encoding="utf-8") as f:
        f.writelines(lines)
    return [line.rstrip("\n").split("\t") for line in lines[1:]]


def load_weights(out_dir):
    from safetensors.torch import load_file

    return load_file(os.path.join(out_dir, "best_model", "model.safetensors"))


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.mark.timeout(400)
def test_two_processes_train_what_one_does_on_the_global_batch(tmp_path, write_yaml, no_dropout_model):
    rows = write_data(tmp_path)
    common = dict(data_dir=str(tmp_path), logging_steps=5, save_steps=5, num_threads=1)
    two = write_yaml(tiny_run_config(no_dropout_model, tmp_path / "two", train_batch_size=PER_DEVICE, **common),
                     name="two.yaml")
    code, out, err = torchrun(two)
    assert code == 0, err[-3000:]
    one = run(load_config(write_yaml(tiny_run_config(no_dropout_model, tmp_path / "one",
                                                     train_batch_size=PER_DEVICE * WORLD, **common),
                                     name="one.yaml")))

    two_dir, one_dir = tmp_path / "two" / "nsmc_tiny", tmp_path / "one" / "nsmc_tiny"
    parallel = json.loads((two_dir / "results.json").read_text(encoding="utf-8"))
    # Same steps (15 per epoch: the schedule counts each rank's batches), same examples, same decisions.
    assert parallel["train"]["steps"] == one["train"]["steps"] == 15
    assert parallel["train"]["examples"] == one["train"]["examples"] == 300
    assert parallel["train"]["processes"] == WORLD
    assert [(e["step"], e["split"], e["metrics"]) for e in parallel["evaluations"]] == \
           [(e["step"], e["split"], e["metrics"]) for e in one["evaluations"]]
    assert [e["loss"] for e in parallel["evaluations"]] == pytest.approx([e["loss"] for e in one["evaluations"]],
                                                                         rel=1e-5)
    assert parallel["best"] == one["best"]

    # The best checkpoints (same step) hold the same weights.
    weights, reference = load_weights(two_dir), load_weights(one_dir)
    assert weights.keys() == reference.keys()
    difference = max((weights[k] - reference[k]).abs().max().item() for k in weights)
    assert difference <= WEIGHT_TOLERANCE
    from safetensors.torch import load_file

    initial = load_file(os.path.join(no_dropout_model, "model.safetensors"))
    moved = max((reference[k] - initial[k]).abs().max().item() for k in reference if k in initial)
    assert moved > 100 * WEIGHT_TOLERANCE, "training must move the weights well past the tolerance"

    # Only rank 0 wrote: the single run's files, one TensorBoard writer, one summary line.
    assert sorted(os.listdir(two_dir)) == sorted(os.listdir(one_dir)) == \
           ["best_model", "checkpoint-10", "checkpoint-15", "checkpoint-5", "predictions_test.jsonl",
            "results.json", "tensorboard", "test"]
    assert len(os.listdir(two_dir / "tensorboard")) == 1
    assert out.count("best test accuracy") == 1

    # Evaluation gathered each of the 99 examples once, in file order, with the single run's predictions.
    predictions = read_jsonl(two_dir / "predictions_test.jsonl")
    assert [p["text_a"] for p in predictions] == [r[1] for r in rows]
    assert predictions == read_jsonl(one_dir / "predictions_test.jsonl")


def test_train_batches_split_each_global_batch_between_ranks():
    from transformers.trainer_pt_utils import LengthGroupedSampler

    lengths = [5 + (i * 37) % 60 for i in range(300)]

    def seeded():
        generator = torch.Generator()
        generator.manual_seed(7)
        return generator

    single = list(LengthGroupedSampler(PER_DEVICE * WORLD, lengths=lengths, generator=seeded()))
    shares = [distributed.train_batches(lengths, PER_DEVICE, WORLD, rank, seeded()) for rank in range(WORLD)]
    assert len(shares[0]) == len(shares[1]) == 15
    for k in range(15):
        assert sorted(shares[0][k] + shares[1][k]) == sorted(single[20 * k : 20 * (k + 1)])
        assert not set(shares[0][k]) & set(shares[1][k])


def test_short_last_global_batch_is_filled_so_ranks_run_alike():
    lengths = list(range(1, 24))  # 23 examples, global batch 2 x 5 = 10: the last holds 3
    for group in (True, False):
        shares = []
        for rank in range(WORLD):
            generator = torch.Generator()
            generator.manual_seed(1)
            shares.append(distributed.train_batches(lengths, 5, WORLD, rank, generator, group))
        assert [len(b) for b in shares[0]] == [len(b) for b in shares[1]] == [5, 5, 2]
        seen = [i for rank_batches in shares for batch in rank_batches for i in batch]
        assert set(seen) == set(range(23)) and len(seen) == 24  # one example repeated to fill the last batch


def test_eval_shares_cover_every_feature_once():
    features = [{"input_ids": [1] * (1 + (i * 7) % 13)} for i in range(TEST_EXAMPLES)]
    shares = [[i for batch in eval_batches(features, 8, WORLD, rank) for i in batch] for rank in range(WORLD)]
    assert sorted(shares[0] + shares[1]) == list(range(TEST_EXAMPLES))
    assert (len(shares[0]), len(shares[1])) == (50, 49)
    # Both shares hold long and short examples alike, so neither rank waits on the other long.
    assert abs(sum(feature_lengths([features[i] for i in shares[0]])) -
               sum(feature_lengths([features[i] for i in shares[1]]))) <= 13


def test_other_ranks_write_nothing(tmp_path, tiny_model_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    outputs = RunOutputs(str(tmp_path / "out"), "nsmc", "accuracy", write=False)
    outputs.log_scalars("train", {"loss": 0.5}, 1)
    outputs.add_evaluation(1, 0.5, "dev", {"accuracy": 50.0}, 0.7)
    outputs.set_best(1, "dev", 50.0, {"accuracy": 50.0})
    outputs.save_best_model(AutoModelForSequenceClassification.from_pretrained(tiny_model_dir),
                            AutoTokenizer.from_pretrained(tiny_model_dir), {}, {"step": 1})
    assert outputs.write_predictions("dev", [{"index": 0}]) is None
    outputs.close()
    assert not os.path.exists(tmp_path / "out")
    assert outputs.results["best"]["score"] == 50.0  # kept in memory like rank 0's


def test_torchrun_environment_is_read():
    assert distributed.from_environment({}) == distributed.Context()
    assert not distributed.from_environment({"WORLD_SIZE": "1", "RANK": "0"}).distributed
    context = distributed.from_environment({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"})
    assert (context.world_size, context.rank, context.local_rank, context.is_main) == (4, 3, 1, False)
