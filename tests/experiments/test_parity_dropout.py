"""experiments/parity_dropout.py: where each graph applies dropout, and its effect on the losses."""
import os

import pytest

from experiments.parity_dropout import normalized_scope, run

# A tiny model on the sample vocab, with the parity runs' dropout (0.1).
TINY = {"model_size": "small", "max_seq_length": 32, "learning_rate": 5e-4, "generator_hidden_size": 0.25,
        "embedding_size": 32, "num_warmup_steps": 2, "num_train_steps": 6, "train_batch_size": 4,
        "model_hparam_overrides": {"hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 1,
                                   "intermediate_size": 256, "max_position_embeddings": 32}}
UPSTREAM = os.environ.get("PARITY_UPSTREAM_DIR")


def test_scopes_lose_their_uniquifiers_but_keep_layer_numbers():
    assert normalized_scope("electra/embeddings_3/dropout/random_uniform/RandomUniform") == "electra/embeddings"
    assert normalized_scope("generator/encoder/layer_2/attention/self/dropout_1/random_uniform/RandomUniform") \
        == "generator/encoder/layer_2/attention/self"


@pytest.mark.slow
def test_the_same_graph_draws_the_same_and_a_dropout_left_out_shows(sample_vocab_dir, tmp_path):
    vocab = os.path.join(sample_vocab_dir, "vocab.txt")
    same = run(vocab, str(tmp_path / "same"), None, draws=5, a="ours", b="ours", hparams=TINY)
    assert same["census_equal"]
    # Per tower: embeddings, then per layer the attention probabilities, attention output and output.
    scopes = [scope.split(" ")[0] for scope, _ in same["census"]["a"]]
    assert sum(n for _, n in same["census"]["a"]) == 2 + 2 * 3
    assert "electra/encoder/layer_0/attention/self" in scopes and "generator/encoder/layer_0/output" in scopes
    assert all(r["a"] == r["b"] and r["welch_z"] == 0.0 for r in same["losses"].values())  # one seed, one graph
    assert same["losses"]["mlm_loss"]["a"][1] > 0  # dropout is on: the draws differ

    no_attention_dropout = dict(TINY["model_hparam_overrides"], attention_probs_dropout_prob=0.0)
    moved = run(vocab, str(tmp_path / "moved"), None, draws=5, a="ours", b="ours", hparams=TINY,
                b_hparams={"model_hparam_overrides": no_attention_dropout})
    assert not moved["census_equal"]
    assert sum(n for _, n in moved["census"]["b"]) == 2 + 2 * 2


@pytest.mark.slow
@pytest.mark.skipif(not UPSTREAM, reason="PARITY_UPSTREAM_DIR unset: no google-research/electra checkout to compare "
                                         "with (it is never part of this repository)")
def test_ours_and_upstream_place_dropout_alike(sample_vocab_dir, tmp_path):
    result = run(os.path.join(sample_vocab_dir, "vocab.txt"), str(tmp_path / "w"), UPSTREAM, draws=40, hparams=TINY)
    assert result["census_equal"]
    assert all(abs(r["welch_z"]) < 4 for r in result["losses"].values())
