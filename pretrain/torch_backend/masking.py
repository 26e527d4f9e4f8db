"""Dynamic masking and putting the generator's samples back, in PyTorch: model/masking.py's rules.

Each example masks ``round(mask_prob * n)`` of its ``n`` non-special tokens (at least one, at
most ``max_predictions_per_seq``, never more than it has); the positions are distinct (Gumbel
top-k), 85 % of them become [MASK] and 15 % keep their token. ``with_replacement`` draws the
positions as upstream does instead: with replacement, the count taken from ``input_mask`` (so
[CLS] and [SEP] count), and a position drawn twice is one masked token with two prediction
slots. Unused slots have position 0 and weight 0; position 0 holds [CLS], never a candidate,
and ``scatter_update`` ignores it.

Random draws take an optional ``torch.Generator`` (on the tensors' device), so a run can be
replayed exactly; they are not TF's draws, which is why parity tests feed fixed masks.
"""
import collections

import torch

MASK_REPLACE_PROB = 0.85  # as model/masking.py: ELECTRA keeps 15 % of masked positions unchanged

Masked = collections.namedtuple("Masked", ["input_ids", "positions", "masked_ids", "weights"])


def candidates_mask(input_ids, input_mask, special_ids):
    """[B, L] bool: real tokens that are not [CLS]/[SEP]/[MASK]/[PAD]."""
    mask = input_mask.bool()
    for special in special_ids:
        mask &= input_ids != special
    return mask


def gather_positions(sequence, positions):
    """sequence [B, L] or [B, L, D], positions [B, N] -> [B, N] or [B, N, D]."""
    if sequence.dim() == 2:
        return torch.gather(sequence, 1, positions)
    return torch.gather(sequence, 1, positions[..., None].expand(-1, -1, sequence.shape[-1]))


def scatter_update(sequence, updates, positions):
    """``sequence[b, positions[b, n]] = updates[b, n]`` for int ids [B, L]; position 0 is never written.

    A position named twice gets the floor of the mean of its updates, as TF's scatter_nd sum
    divided by the count does. Returns the new sequence and the [B, L] int mask of written positions.
    """
    written = torch.zeros_like(sequence).scatter_add_(1, positions, torch.ones_like(updates))
    values = torch.zeros_like(sequence).scatter_add_(1, positions, updates.to(sequence.dtype))
    values = torch.div(values, written.clamp(min=1), rounding_mode="floor")
    written = written.clamp(max=1)
    written[:, 0] = 0
    return written * values + (1 - written) * sequence, written


def mask(input_ids, input_mask, mask_prob, max_predictions, mask_id, special_ids, generator=None,
         with_replacement=False):
    """Choose the positions to predict and put [MASK] on 85 % of them."""
    batch_size, seq_length = input_ids.shape
    n = max_predictions
    candidates = candidates_mask(input_ids, input_mask, special_ids)
    num_candidates = candidates.sum(-1)
    counted = input_mask.sum(-1) if with_replacement else num_candidates
    # float32 and round-half-to-even, as tf.round on TF's float32 product.
    num_to_predict = torch.round(counted.float() * torch.tensor(mask_prob, dtype=torch.float32)).long()
    num_to_predict = num_to_predict.clamp(min=1, max=n)
    if not with_replacement:
        num_to_predict = torch.minimum(num_to_predict, num_candidates)
    slots = torch.arange(n, device=input_ids.device)
    weights = (slots[None, :] < num_to_predict[:, None]).float()

    if with_replacement:
        # Upstream's tf.random.categorical over the candidates. A row without any has no
        # distribution there (TF's log(0/0) is NaN); it draws position 0, which nothing writes.
        probs = candidates.float()
        probs[:, 0] += (num_candidates == 0).float()
        positions = torch.multinomial(probs, n, replacement=True, generator=generator)
    else:
        noise = torch.rand(batch_size, seq_length, generator=generator, device=input_ids.device)
        scores = torch.where(candidates, noise, torch.full_like(noise, -1.0))
        positions = torch.topk(scores, n, dim=-1).indices
    positions = positions * weights.long()
    masked_ids = gather_positions(input_ids, positions) * weights.long()

    replace = torch.rand(batch_size, n, generator=generator, device=input_ids.device) < MASK_REPLACE_PROB
    masked_input_ids, _ = scatter_update(input_ids, torch.full_like(positions, mask_id), positions * replace.long())
    return Masked(masked_input_ids, positions, masked_ids, weights)


def sample_from_softmax(logits, disallow=None, generator=None):
    """One Gumbel-max sample per row, as token ids; ``disallow`` (one-hot) rows pushed down by 1000."""
    logits = logits.float()
    if disallow is not None:
        logits = logits - 1000.0 * disallow
    uniform = torch.rand(logits.shape, generator=generator, device=logits.device)
    gumbel = -torch.log(-torch.log(uniform + 1e-9) + 1e-9)
    return torch.argmax(logits + gumbel, -1)
