"""Masking rates, the 85/15 [MASK]/keep split, scatter/unmask and generator sampling, on a fixed seed."""
import numpy as np
import tensorflow.compat.v1 as tf

from model import masking

MASK_ID, CLS, SEP, PAD = 4, 2, 3, 0
SPECIAL = (CLS, SEP, MASK_ID, PAD)


def run(fetches, graph):
    with tf.Session(graph=graph) as session:
        return session.run(fetches)


def random_batch(batch_size=256, seq_length=128, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, 300, size=(batch_size, seq_length))
    lengths = rng.integers(20, seq_length + 1, size=batch_size)
    mask = (np.arange(seq_length)[None, :] < lengths[:, None]).astype(np.int32)
    ids[:, 0] = CLS
    ids[np.arange(batch_size), lengths - 1] = SEP
    ids = ids * mask
    return ids.astype(np.int32), mask, lengths


def test_masking_rate_and_85_15_split_hold():
    ids, input_mask, lengths = random_batch()
    max_predictions = int((0.15 + 0.005) * 128)
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(1234)
        inputs = masking.Inputs(tf.constant(ids), tf.constant(input_mask), tf.zeros_like(ids), None, None, None)
        masked = masking.mask(inputs, 0.15, max_predictions, MASK_ID, SPECIAL, seed=7)
        restored = masking.unmask(masked)
        out = run({"ids": masked.input_ids, "pos": masked.masked_lm_positions, "lm_ids": masked.masked_lm_ids,
                   "w": masked.masked_lm_weights, "restored": restored.input_ids}, graph)

    num_candidates = lengths - 2  # everything but [CLS] and the final [SEP]
    expected = np.minimum(max_predictions, np.maximum(1, np.round(num_candidates * 0.15))).astype(int)
    assert (out["w"].sum(1) == expected).all()

    replaced = kept = 0
    for b in range(len(ids)):
        positions = out["pos"][b][out["w"][b] > 0]
        assert len(set(positions)) == len(positions), "positions are drawn without replacement"
        assert all(0 < p < lengths[b] - 1 for p in positions), "only real, non-special tokens are masked"
        assert (out["lm_ids"][b][out["w"][b] > 0] == ids[b, positions]).all()
        replaced += (out["ids"][b, positions] == MASK_ID).sum()
        kept += (out["ids"][b, positions] == ids[b, positions]).sum()
        untouched = np.setdiff1d(np.arange(128), positions)
        assert (out["ids"][b, untouched] == ids[b, untouched]).all()
    total = out["w"].sum()
    assert replaced + kept == total
    # ~4,700 draws: the standard error of the [MASK] share is 0.005, so 0.02 is four of them.
    assert abs(replaced / total - 0.85) < 0.02
    assert (out["restored"] == ids).all()


def test_masking_rate_follows_mask_prob():
    ids, input_mask, lengths = random_batch(seed=3)
    graph = tf.Graph()
    with graph.as_default():
        inputs = masking.Inputs(tf.constant(ids), tf.constant(input_mask), tf.zeros_like(ids), None, None, None)
        weights = run(masking.mask(inputs, 0.3, 64, MASK_ID, SPECIAL, seed=1).masked_lm_weights, graph)
    rate = weights.sum() / (lengths - 2).sum()
    assert abs(rate - 0.3) < 0.01


def test_with_replacement_counts_as_upstream_and_draws_duplicates():
    # Upstream's mask(): round(mask_prob * input_mask tokens), [CLS]/[SEP] counted; positions
    # from tf.random.categorical, so short examples often draw a position twice.
    ids, input_mask, lengths = random_batch(seq_length=32, seed=5)
    lengths = np.minimum(lengths, 32)
    graph = tf.Graph()
    with graph.as_default():
        inputs = masking.Inputs(tf.constant(ids), tf.constant(input_mask), tf.zeros_like(ids), None, None, None)
        masked = masking.mask(inputs, 0.15, 5, MASK_ID, SPECIAL, seed=3, with_replacement=True)
        out = run({"pos": masked.masked_lm_positions, "w": masked.masked_lm_weights, "ids": masked.input_ids}, graph)
    expected = np.minimum(5, np.maximum(1, np.round(lengths * 0.15))).astype(int)
    assert (out["w"].sum(1) == expected).all()
    duplicates = 0
    for b in range(len(ids)):
        positions = out["pos"][b][out["w"][b] > 0]
        assert all(0 < p < lengths[b] - 1 for p in positions), "only real, non-special tokens are masked"
        duplicates += len(positions) - len(set(positions))
        masked_now = np.flatnonzero(out["ids"][b] != ids[b])
        assert set(masked_now) <= set(positions)
    # 256 rows of 2-5 draws over 18-30 candidates: about 60 repeats expected; none would mean
    # the draw is still without replacement.
    assert duplicates > 10


def test_scatter_update_ignores_position_zero_and_reports_written():
    graph = tf.Graph()
    with graph.as_default():
        seq = tf.constant([[2, 10, 11, 12, 3]])
        new, written = masking.scatter_update(seq, tf.constant([[99, 98, 97]]), tf.constant([[1, 3, 0]]))
        new, written = run([new, written], graph)
    assert new.tolist() == [[2, 99, 11, 98, 3]]
    assert written.tolist() == [[0, 1, 0, 1, 0]]


def test_sampling_follows_logits_and_disallow_correct():
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(0)
        logits = tf.constant(np.log([[0.7, 0.2, 0.1]] * 4000), tf.float32)
        free = masking.sample_from_softmax(logits)
        blocked = masking.sample_from_softmax(logits, disallow=tf.one_hot(tf.zeros([4000], tf.int32), 3))
        free, blocked = run([free, blocked], graph)
    shares = np.bincount(free, minlength=3) / len(free)
    assert np.allclose(shares, [0.7, 0.2, 0.1], atol=0.03)
    assert (blocked != 0).all()
    assert abs((blocked == 1).mean() - 2 / 3) < 0.03
