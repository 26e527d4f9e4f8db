"""Dynamic masking, and putting the generator's samples back into the sequence.

Masking follows upstream ELECTRA: each example masks ``round(mask_prob * n)`` of its ``n``
non-special tokens (at least one, at most ``max_predictions_per_seq``); of the chosen
positions 85 % become [MASK] and 15 % keep the original token (ELECTRA drops BERT's
random-token replacement). Positions are drawn without replacement (Gumbel top-k), so the
masking rate is exact rather than thinned by duplicate draws. ``with_replacement`` draws them
as upstream does instead (``tf.random.categorical``, the count taken from ``input_mask``, so
[CLS] and [SEP] count): a position drawn twice is one masked token with two prediction slots,
and ``scatter_update`` then writes the floor-mean of the generator's two samples' ids there.
Unused prediction slots have position 0 and weight 0; position 0 always holds [CLS], which is
never a candidate.
"""
import collections

import tensorflow.compat.v1 as tf

from model.modeling import get_shape_list

MASK_REPLACE_PROB = 0.85

Inputs = collections.namedtuple(
    "Inputs", ["input_ids", "input_mask", "segment_ids", "masked_lm_positions", "masked_lm_ids",
               "masked_lm_weights"])


def uniform_noise(shape, row_keys, seed=None):
    """Uniform [0, 1) noise for masking and sampling: upstream's stateful random ops.

    ``row_keys`` ([B] ints identifying each example by content) is unused here; it lets a
    test swap in noise that depends only on the example, so a batch split over replicas
    draws exactly what one device draws (tests/pretrain/test_distribution.py).
    """
    del row_keys
    return tf.random.uniform(shape, seed=seed)


def example_keys(input_ids):
    """A per-example int key from its token ids (see ``uniform_noise``)."""
    seq_length = get_shape_list(input_ids)[1]
    return tf.reduce_sum(input_ids * tf.range(1, seq_length + 1)[None, :], -1)


def features_to_inputs(features):
    return Inputs(features["input_ids"], features["input_mask"], features["segment_ids"], None, None, None)


def gather_positions(sequence, positions):
    """sequence [B, L] or [B, L, D], positions [B, N] -> [B, N] or [B, N, D]."""
    shape = get_shape_list(sequence)
    batch_size, seq_length = shape[0], shape[1]
    flat = tf.reshape(positions + seq_length * tf.range(batch_size)[:, None], [-1])
    gathered = tf.gather(tf.reshape(sequence, [batch_size * seq_length] + shape[2:]), flat)
    return tf.reshape(gathered, [batch_size, -1] + shape[2:])


def scatter_update(sequence, updates, positions):
    """Replace ``sequence[b, positions[b, n]]`` by ``updates[b, n]`` (int ids, [B, L]).

    Updates to position 0 are ignored (that is where unused slots point). Returns the new
    sequence and a [B, L] int mask of the positions that were written.
    """
    batch_size, seq_length = get_shape_list(sequence)
    flat_positions = tf.reshape(positions + seq_length * tf.range(batch_size)[:, None], [-1, 1])
    written = tf.scatter_nd(flat_positions, tf.ones_like(tf.reshape(updates, [-1])), [batch_size * seq_length])
    values = tf.scatter_nd(flat_positions, tf.reshape(updates, [-1]), [batch_size * seq_length])
    written = tf.reshape(written, [batch_size, seq_length])
    # scatter_nd sums duplicates; positions are unique except the unused slots at 0.
    values = tf.reshape(values, [batch_size, seq_length]) // tf.maximum(written, 1)
    not_first = tf.concat([tf.zeros([batch_size, 1], tf.int32), tf.ones([batch_size, seq_length - 1], tf.int32)], 1)
    written = tf.minimum(written, 1) * not_first
    return written * values + (1 - written) * sequence, written


def candidates_mask(input_ids, input_mask, special_ids):
    """Positions that may be masked: real tokens that are not [CLS]/[SEP]/[MASK]/[PAD]."""
    mask = tf.cast(input_mask, tf.bool)
    for special in special_ids:
        mask &= tf.not_equal(input_ids, special)
    return mask


def mask(inputs, mask_prob, max_predictions_per_seq, mask_id, special_ids, seed=None, with_replacement=False):
    """Choose positions to predict and replace 85 % of them with [MASK]."""
    batch_size, seq_length = get_shape_list(inputs.input_ids)
    n = max_predictions_per_seq
    candidates = candidates_mask(inputs.input_ids, inputs.input_mask, special_ids)
    num_candidates = tf.reduce_sum(tf.cast(candidates, tf.int32), -1)
    counted = tf.reduce_sum(inputs.input_mask, -1) if with_replacement else num_candidates
    num_to_predict = tf.cast(tf.round(tf.cast(counted, tf.float32) * mask_prob), tf.int32)
    num_to_predict = tf.minimum(n, tf.maximum(1, num_to_predict))
    if not with_replacement:  # distinct positions: no more than there are candidates
        num_to_predict = tf.minimum(num_to_predict, num_candidates)
    weights = tf.sequence_mask(num_to_predict, n, dtype=tf.float32)

    keys = example_keys(inputs.input_ids)
    if with_replacement:
        candidates_float = tf.cast(candidates, tf.float32)
        log_probs = tf.log(candidates_float / tf.reduce_sum(candidates_float, -1, keepdims=True))
        positions = tf.random.categorical(log_probs, n, dtype=tf.int32, seed=seed)
    else:
        # Gumbel top-k: the k largest of (uniform noise on candidates) is a uniform sample of k
        # distinct candidates; non-candidates sit at -inf and are only picked in unused slots.
        noise = uniform_noise([batch_size, seq_length], keys, seed=seed)
        scores = tf.where(candidates, noise, tf.fill([batch_size, seq_length], -1.0))
        _, positions = tf.math.top_k(scores, k=n)
    positions = positions * tf.cast(weights, tf.int32)
    masked_lm_ids = gather_positions(inputs.input_ids, positions) * tf.cast(weights, tf.int32)

    replace = tf.less(uniform_noise([batch_size, n], keys + 1, seed=None if seed is None else seed + 1),
                      MASK_REPLACE_PROB)
    replace_positions = positions * tf.cast(replace, tf.int32)
    input_ids, _ = scatter_update(inputs.input_ids, tf.fill([batch_size, n], mask_id), replace_positions)
    return inputs._replace(input_ids=tf.stop_gradient(input_ids), masked_lm_positions=positions,
                           masked_lm_ids=masked_lm_ids, masked_lm_weights=weights)


def unmask(inputs):
    """The original sequence back (the 15 % kept tokens are already there)."""
    input_ids, _ = scatter_update(inputs.input_ids, inputs.masked_lm_ids, inputs.masked_lm_positions)
    return inputs._replace(input_ids=input_ids)


def sample_from_softmax(logits, disallow=None, row_keys=None):
    """One Gumbel-max sample per row, as token ids; ``disallow`` (one-hot) rows are pushed down."""
    logits = tf.cast(logits, tf.float32)
    if disallow is not None:
        logits -= 1000.0 * disallow
    uniform = uniform_noise(get_shape_list(logits), row_keys)
    gumbel = -tf.log(-tf.log(uniform + 1e-9) + 1e-9)
    return tf.argmax(logits + gumbel, -1, output_type=tf.int32)
