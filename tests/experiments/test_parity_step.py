"""experiments/parity_step.py: one fixed batch and a few steps through two graphs from one checkpoint."""
import os

import numpy as np
import pytest

from experiments.parity_step import counted, make_batches, read_vocab, relative_difference, run

# A tiny model on the sample vocab; dropout off, the parity schedule (warmup 2, decay to 0 at 6).
TINY = {"model_size": "small", "max_seq_length": 32, "learning_rate": 5e-4, "generator_hidden_size": 0.25,
        "embedding_size": 32, "num_warmup_steps": 2, "num_train_steps": 6,
        "model_hparam_overrides": {"hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 1,
                                   "intermediate_size": 256, "max_position_embeddings": 32,
                                   "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}}
UPSTREAM = os.environ.get("PARITY_UPSTREAM_DIR")


def test_fixed_batches_mask_distinct_candidates_and_leave_unused_slots_empty(sample_vocab_dir):
    vocab = os.path.join(sample_vocab_dir, "vocab.txt")
    ids, _ = read_vocab(vocab)
    b = make_batches(vocab, batch_size=6, seq_length=32, max_predictions=5, steps=2)
    for s in range(2):
        for e in range(6):
            n = int(b["weights"][s, e].sum())
            length = int(b["input_mask"][s, e].sum())
            positions = b["positions"][s, e, :n]
            assert n >= 1 and len(set(positions)) == n and (b["positions"][s, e, n:] == 0).all()
            assert ((positions >= 1) & (positions <= length - 2)).all()  # never [CLS], [SEP] or padding
            assert (b["masked_ids"][s, e, :n] == b["input_ids"][s, e, positions]).all()
            changed = np.flatnonzero(b["masked_input_ids"][s, e] != b["input_ids"][s, e])
            assert set(changed) <= set(positions) and (b["masked_input_ids"][s, e, changed] == ids["[MASK]"]).all()
    assert b["input_mask"][:, 0].sum(-1).tolist() == [3, 3]  # the shortest example: one candidate


def test_relative_difference_is_scale_free_and_floors_rounding_noise():
    a = np.array([1e-3, -2e-3])
    assert relative_difference(a, a) == 0.0
    assert relative_difference(a, a * 1.01) == pytest.approx(0.01)
    assert relative_difference(a * 1e6, a * 1e6 * 1.01) == pytest.approx(0.01)
    noise = np.array([1e-12, -1e-12])
    assert relative_difference(noise, -noise) == pytest.approx(2.0)
    assert relative_difference(noise, -noise, floor=1e-6) == pytest.approx(2e-6)
    assert relative_difference(a, a[:1]) == float("inf")


@pytest.mark.slow
def test_ours_against_ours_is_identical_and_a_changed_learning_rate_shows_after_the_first_update(
        sample_vocab_dir, tmp_path):
    vocab = os.path.join(sample_vocab_dir, "vocab.txt")
    same = run("ours", "ours", vocab, str(tmp_path / "same"), hparams=TINY, steps=3, batch_size=4)
    assert same["equal"] and not same["only_a"] and not same["only_b"] and len(same["steps"]) == 3
    assert all(same["first"][g]["relative"] == 0.0 for g in same["first"])
    assert max(v for g in same["grad"].values() for v in g.values()) == 0.0
    assert max(v for step in same["steps"] for v in step["variables"].values()) == 0.0
    assert same["mask_counts"]["a"] == same["mask_counts"]["b"]
    # Both sides restored one checkpoint and saw the same batches: the losses are the same numbers.
    assert same["steps"][1]["losses_a"] == same["steps"][1]["losses_b"]

    faster = run("ours", "ours", vocab, str(tmp_path / "faster"), hparams=TINY, b_hparams={"learning_rate": 1e-3},
                 steps=3, batch_size=4)
    assert not faster["equal"]
    # Same graph and checkpoint: the first batch's losses and gradients agree exactly...
    assert max(v for g in faster["grad"].values() for v in g.values()) == 0.0
    # ...step 0 has learning rate 0 (warmup), so the peak rate only shows from step 1 on.
    assert max(faster["steps"][0]["variables"].values()) == 0.0
    after = faster["steps"][1]["variables"]
    assert after["electra/encoder/layer_0/attention/self/query/kernel"] > 1e-3
    assert after["generator_predictions/output_bias"] > 1e-3
    assert after["electra/encoder/layer_0/attention/self/query/kernel/adam_m"] == 0.0  # moments see no rate


@pytest.mark.slow
@pytest.mark.skipif(not UPSTREAM, reason="PARITY_UPSTREAM_DIR unset: no google-research/electra checkout to compare "
                                         "with (it is never part of this repository)")
def test_ours_and_upstreams_graphs_agree_on_a_fixed_batch(sample_vocab_dir, tmp_path):
    vocab = os.path.join(sample_vocab_dir, "vocab.txt")
    result = run("ours", "upstream", vocab, str(tmp_path / "shipped"), UPSTREAM, hparams=TINY, steps=1, batch_size=4)
    assert not result["only_a"] and not result["only_b"]
    assert all(result["first"][g]["relative"] < 1e-5 for g in result["first"])
    assert max(v for g in result["grad"].values() for v in g.values()) < 1e-4
    # Not asserted: the step. Upstream's global-step increment races its update's read of the
    # learning rate (no control dependency), so its step 0 moves the weights in some runs only.


def assert_within_the_issue_thresholds(result):
    """Losses 1e-5 relative, every gradient 1e-4, every weight and Adam slot 1e-5 after every step."""
    assert not result["only_a"] and not result["only_b"]
    assert all(result["first"][g]["relative"] < 1e-5 for g in result["first"])
    assert len(result["grad"]["total_loss"]) > 20
    assert max(v for g in result["grad"].values() for v in g.values()) < 1e-4
    # Left out after the steps: only the attention key biases, whose gradient is rounding noise.
    noise_only = set(result["noise_only"])
    assert noise_only and all(name.endswith("/attention/self/key/bias") for name in noise_only)
    assert len(result["steps"]) == 8
    for step in result["steps"]:
        assert step["losses_relative"] < 1e-5
        assert max(counted(step, noise_only).values()) < 1e-5


def test_torch_backend_equals_our_tf_graph_on_fixed_batches_over_eight_steps(sample_vocab_dir, tmp_path):
    vocab = os.path.join(sample_vocab_dir, "vocab.txt")
    result = run("ours", "torch", vocab, str(tmp_path / "torch"), hparams=TINY, steps=8, batch_size=4)
    assert_within_the_issue_thresholds(result)
    # The same exact-count masking rule on the first batch's own draws.
    assert result["mask_counts"]["a"] == result["mask_counts"]["b"]
    # The schedule as ours reads it: warmup 2, linear decay to 0 at step 6.
    assert [s["lr_b"] for s in result["steps"]] == pytest.approx([s["lr_a"] for s in result["steps"]], rel=1e-6)
    assert result["steps"][0]["lr_b"] == 0.0 and result["steps"][2]["lr_b"] > 0 and result["steps"][6]["lr_b"] == 0
    # The steps moved the weights far beyond the tolerance: equality is not that of untouched values.
    a = np.load(tmp_path / "torch" / "step_a_ours.npz")
    init = np.load(tmp_path / "torch" / "init" / "variables.npz")
    name = "electra/encoder/layer_0/attention/self/query/kernel"
    assert relative_difference(init[name], a[f"step7/var/{name}"]) > 1e-3


@pytest.mark.slow
@pytest.mark.skipif(not UPSTREAM, reason="PARITY_UPSTREAM_DIR unset: no google-research/electra checkout to compare "
                                         "with (it is never part of this repository)")
def test_torch_backend_equals_upstreams_graph_on_fixed_batches_over_eight_steps(sample_vocab_dir, tmp_path):
    from configure_pretraining import PretrainingConfig
    from pretrain.torch_backend.optim import learning_rate

    vocab = os.path.join(sample_vocab_dir, "vocab.txt")
    # Upstream's update reads its rate at step s or s + 1 as a race falls: the torch side takes
    # the rate upstream's update read (the tensor fetched in the same run), and the test checks
    # each was one of those two of our schedule.
    result = run("upstream", "torch", vocab, str(tmp_path / "torch"), UPSTREAM, hparams=TINY, steps=8, batch_size=4,
                 torch_lr="as_run")
    assert_within_the_issue_thresholds(result)
    config = PretrainingConfig("m", "d", **TINY)
    for s, step in enumerate(result["steps"]):
        assert any(step["lr_a"] == pytest.approx(learning_rate(s, config, ahead), rel=1e-6, abs=1e-12)
                   for ahead in (False, True))


@pytest.mark.slow
@pytest.mark.parametrize("setting", [{"uniform_generator": True}, {"untied_generator_embeddings": True},
                                     {"untied_generator": False}, {"electra_objective": False}])
def test_torch_backend_equals_our_tf_graph_in_every_generator_setting(sample_vocab_dir, tmp_path, setting):
    # The uniform generator and untied embeddings leave the discriminator's word table reached by
    # lookups only: TF clips it by its looked-up rows' norm, and so must the torch side.
    vocab = os.path.join(sample_vocab_dir, "vocab.txt")
    result = run("ours", "torch", vocab, str(tmp_path / "torch"), hparams=dict(TINY, **setting), steps=8,
                 batch_size=4)
    assert_within_the_issue_thresholds(result)
