"""pretrain/torch_backend/masking.py: model/masking.py's counts and rates, on real tokenized text."""
import numpy as np
import pytest
import torch

from pretrain.torch_backend import masking
from util.tokenization import KoTokenizer

SEQ = 64


@pytest.fixture(scope="module")
def real(sample_corpus_file, sample_vocab_dir):
    """(input_ids, input_mask, mask id, special ids): the sample's lines packed into up to 64 tokens per
    example, as the dataset builder packs them; every third example is cut short, so lengths vary."""
    tokenizer = KoTokenizer.from_vocab(f"{sample_vocab_dir}/vocab.txt", "wordpiece", False)
    cls, sep, mask_id, pad = tokenizer.convert_tokens_to_ids(["[CLS]", "[SEP]", "[MASK]", "[PAD]"])
    with open(sample_corpus_file, encoding="utf-8") as f:
        tokens = [t for line in f if line.strip() for t in tokenizer.encode(line.strip())]
    rows, start = [], 0
    while start < len(tokens) and len(rows) < 256:
        length = SEQ - 2 if len(rows) % 3 else 3 + len(rows) % (SEQ - 4)
        rows.append([cls] + tokens[start:start + length] + [sep])
        start += length
    ids = np.full((len(rows), SEQ), pad, np.int64)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = row
    ids = torch.from_numpy(ids)
    return ids, (ids != pad).long(), mask_id, (cls, sep, mask_id, pad)


def tf_counts(ids, input_mask, mask_id, special_ids, with_replacement):
    """Positions per example that model/masking.py (the TF graph) picks on the same batch."""
    import tensorflow.compat.v1 as tf

    from model import masking as tf_masking

    with tf.Graph().as_default(), tf.Session() as sess:
        inputs = tf_masking.features_to_inputs({"input_ids": tf.constant(ids.numpy().astype(np.int32)),
                                                "input_mask": tf.constant(input_mask.numpy().astype(np.int32)),
                                                "segment_ids": tf.zeros(ids.shape, tf.int32)})
        masked = tf_masking.mask(inputs, 0.15, 10, mask_id, special_ids, seed=1, with_replacement=with_replacement)
        return sess.run(masked.masked_lm_weights).sum(-1)


def test_distinct_positions_exact_counts_and_85_percent_mask_as_the_tf_graph(real):
    ids, input_mask, mask_id, specials = real
    candidates = masking.candidates_mask(ids, input_mask, specials)
    n_candidates = candidates.sum(-1)
    expected = torch.minimum(torch.round(n_candidates * 0.15).long().clamp(1, 10), n_candidates)
    tf_expected = tf_counts(ids, input_mask, mask_id, specials, False)
    chosen_total, masked_total = 0, 0
    for seed in range(20):  # the sample is small: twenty draws over it
        out = masking.mask(ids, input_mask, 0.15, 10, mask_id, specials, torch.Generator().manual_seed(seed))
        assert torch.equal(out.weights.sum(-1).long(), expected) and (out.weights.sum(-1).numpy() == tf_expected).all()
        for b in range(len(ids)):
            n = int(out.weights[b].sum())
            positions = out.positions[b, :n]
            assert len(set(positions.tolist())) == n and candidates[b, positions].all()
            assert (out.positions[b, n:] == 0).all() and (out.masked_ids[b, n:] == 0).all()
            assert torch.equal(out.masked_ids[b, :n], ids[b, positions])
            changed = (out.input_ids[b] != ids[b]).nonzero().flatten()
            assert set(changed.tolist()) <= set(positions.tolist()) and (out.input_ids[b, changed] == mask_id).all()
            chosen_total, masked_total = chosen_total + n, masked_total + len(changed)
    assert chosen_total > 5000
    # 85 % [MASK], 15 % kept: binomial over the chosen positions (4 standard deviations).
    assert abs(masked_total / chosen_total - 0.85) < 4 * np.sqrt(0.85 * 0.15 / chosen_total)
    # The text masked at 15 % (short examples round, and mask at least one token).
    assert abs(chosen_total / (20 * int(n_candidates.sum())) - 0.15) < 0.01


def test_with_replacement_counts_from_input_mask_and_masks_fewer_tokens_on_duplicates(real):
    ids, input_mask, mask_id, specials = real
    out = masking.mask(ids, input_mask, 0.15, 10, mask_id, specials, torch.Generator().manual_seed(0),
                       with_replacement=True)
    candidates = masking.candidates_mask(ids, input_mask, specials)
    # Upstream's count: [CLS] and [SEP] count, and there may be more slots than candidates.
    expected = torch.round(input_mask.sum(-1) * 0.15).long().clamp(1, 10)
    assert torch.equal(out.weights.sum(-1).long(), expected)
    assert (out.weights.sum(-1).numpy() == tf_counts(ids, input_mask, mask_id, specials, True)).all()
    duplicates = 0
    for b in range(len(ids)):
        n = int(out.weights[b].sum())
        positions = out.positions[b, :n]
        assert candidates[b, positions].all() and torch.equal(out.masked_ids[b, :n], ids[b, positions])
        duplicates += n - len(set(positions.tolist()))
    assert duplicates > 0
    # A position drawn twice is one token: fewer distinct tokens than weighted slots.
    distinct = sum(len(set(out.positions[b, :int(out.weights[b].sum())].tolist())) for b in range(len(ids)))
    assert distinct + duplicates == int(out.weights.sum())


def test_scatter_update_ignores_position_0_and_floors_the_mean_of_duplicates():
    sequence = torch.tensor([[2, 10, 11, 12, 3]])
    updated, written = masking.scatter_update(sequence, torch.tensor([[7, 20, 25, 9]]), torch.tensor([[0, 2, 2, 4]]))
    assert updated.tolist() == [[2, 10, 22, 12, 9]] and written.tolist() == [[0, 0, 1, 0, 1]]


def test_gumbel_sampling_draws_from_the_softmax():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, -30.0]]).repeat(40000, 1)
    ids = masking.sample_from_softmax(logits, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(ids, minlength=5).double() / len(ids)
    expected = torch.softmax(logits[0].double(), -1)
    assert torch.allclose(freq, expected, atol=4 * np.sqrt(0.25 / len(ids)))
    disallow = torch.nn.functional.one_hot(torch.zeros(len(ids), dtype=torch.long), 5).float()
    ids = masking.sample_from_softmax(logits, disallow, torch.Generator().manual_seed(0))
    assert (ids != 0).all() and (torch.bincount(ids, minlength=5)[1] > 0.6 * len(ids))
