"""pretrain/torch_backend/metrics.py: the TF backend's batch accuracies, on the torch network's output."""
import types

import numpy as np
import pytest
import torch

from pretrain.torch_backend.metrics import batch_accuracies
from pretrain.torch_backend.model import ElectraPretrainer

from .tiny_config import SEQ, make_config


def tf_accuracies(out):
    """model/electra_model.PretrainingModel.accuracies() on the same tensors."""
    import tensorflow.compat.v1 as tf

    from model.electra_model import PretrainingModel

    with tf.Graph().as_default(), tf.Session() as sess:
        t = {k: tf.constant(v.detach().numpy()) for k, v in out.items() if v.dim() > 0}
        as_int = lambda name: tf.cast(t[name], tf.int32)  # noqa: E731
        model = types.SimpleNamespace(
            masked_inputs=types.SimpleNamespace(masked_lm_ids=as_int("masked_lm_ids"), input_mask=as_int("input_mask"),
                                                masked_lm_weights=t["masked_lm_weights"]),
            mlm_output=types.SimpleNamespace(preds=as_int("masked_lm_preds")),
            disc_output=types.SimpleNamespace(probs=t["disc_probs"], preds=as_int("disc_preds"),
                                              labels=as_int("disc_labels")),
            real_tokens=t["real_tokens"])
        model.real_token_stats = lambda: PretrainingModel.real_token_stats(model)
        return sess.run(PretrainingModel.accuracies(model))


@pytest.mark.parametrize("constant", [False, True])
def test_batch_accuracies_equal_the_tf_graphs_on_the_networks_output(sample_vocab_dir, constant):
    torch.manual_seed(0)
    config = make_config(sample_vocab_dir)
    ids = torch.tensor(np.random.default_rng(0).integers(10, config.vocab_size, (8, SEQ)))
    ids[:, 0], ids[:, -1] = 2, 3
    mask = torch.ones_like(ids)
    mask[::2, 20:] = 0
    ids[::2, 20:] = 0
    out = ElectraPretrainer(config)(ids, mask, torch.zeros_like(ids), generator=torch.Generator().manual_seed(0))
    if constant:  # a collapsed discriminator: every probability the same
        out["disc_probs"] = torch.full_like(out["disc_probs"], 0.3)
    ours = {k: float(v) for k, v in batch_accuracies(out).items()}
    theirs = tf_accuracies(out)
    assert ours.keys() == theirs.keys()
    assert ours == pytest.approx({k: float(v) for k, v in theirs.items()}, rel=1e-5, abs=1e-6)
    assert 0.0 < ours["disc_auc_real"] < 1.0 and (ours["disc_prob_std_real"] < 1e-6) == constant
