"""pretrain/torch_backend/optim.py against model/optimization.py's TF ops, value by value."""
import re

import numpy as np
import pytest
import torch

from configure_pretraining import PretrainingConfig
from pretrain.torch_backend.optim import (AdamWeightDecay, build_optimizer, build_scheduler, clip_by_global_norm,
                                          learning_rate)

from .tiny_config import make_config


def tf_run(build):
    """Evaluate ``build()`` (TF tensors) in a fresh graph."""
    import tensorflow.compat.v1 as tf

    with tf.Graph().as_default(), tf.Session() as sess:
        fetches = build(tf)
        sess.run(tf.global_variables_initializer())
        return sess.run(fetches)


@pytest.mark.parametrize("warmup,power", [(3, 1.0), (0, 1.0), (4, 0.5)])
def test_schedule_equals_the_tf_graphs_over_warmup_decay_and_past_the_end(warmup, power):
    from model.optimization import learning_rate_schedule

    config = PretrainingConfig("m", "d", learning_rate=5e-4, num_warmup_steps=warmup, num_train_steps=10,
                               lr_decay_power=power)
    steps = list(range(13))
    expected = tf_run(lambda tf: [learning_rate_schedule(tf.constant(s, tf.int64), 5e-4, 10, warmup, power)
                                  for s in steps])
    assert [learning_rate(s, config) for s in steps] == pytest.approx(expected, rel=1e-6, abs=1e-12)
    assert [learning_rate(s, config, lr_ahead=True) for s in steps[:-1]] == pytest.approx(expected[1:], rel=1e-6,
                                                                                           abs=1e-12)
    model = torch.nn.Linear(2, 2)
    optimizer = AdamWeightDecay(model.parameters(), lr=5e-4)
    scheduler = build_scheduler(optimizer, config)
    seen = []
    for _ in steps:
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx(expected, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("scale", [10.0, 0.01])
def test_global_norm_clipping_equals_tf_clip_by_global_norm(scale):
    rng = np.random.default_rng(0)
    arrays = [scale * rng.standard_normal(shape).astype(np.float32) for shape in ((5, 3), (7,), (2, 2, 2))]
    expected, norm = tf_run(lambda tf: tf.clip_by_global_norm([tf.constant(a) for a in arrays], 1.0))
    params = [torch.nn.Parameter(torch.zeros(a.shape)) for a in arrays]
    for p, a in zip(params, arrays):
        p.grad = torch.from_numpy(a.copy())
    assert float(clip_by_global_norm(params, 1.0)) == pytest.approx(float(norm), rel=1e-6)
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p.grad.numpy(), e, rtol=1e-6, atol=1e-9)
    if scale < 1:  # below the clip norm nothing changes
        assert all(np.array_equal(p.grad.numpy(), a) for p, a in zip(params, arrays))


def test_adam_weight_decay_equals_the_tf_update_without_bias_correction():
    from model.optimization import AdamWeightDecay as TFAdamWeightDecay

    rng = np.random.default_rng(0)
    start = rng.standard_normal((4, 3)).astype(np.float32)
    grads = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(3)]

    def tf_steps(tf):
        results = []
        for name in ("layer/dense/kernel", "layer/LayerNorm/gamma"):
            param = tf.get_variable(name, initializer=tf.constant(start))
            optimizer = TFAdamWeightDecay(1e-2, weight_decay_rate=0.1)
            m, v = optimizer.slots(param)
            grad = tf.placeholder(tf.float32, start.shape)
            update = optimizer.update(param, grad, m, v)
            results.append((param, m, v, grad, update))
        return results

    import tensorflow.compat.v1 as tf

    with tf.Graph().as_default(), tf.Session() as sess:
        built = tf_steps(tf)
        sess.run(tf.global_variables_initializer())
        for g in grads:
            sess.run([b[4] for b in built], {b[3]: g for b in built})
        expected = [sess.run(b[:3]) for b in built]

    for (param_tf, m_tf, v_tf), decay in zip(expected, (0.1, 0.0)):  # LayerNorm: no decay
        param = torch.nn.Parameter(torch.from_numpy(start.copy()))
        optimizer = AdamWeightDecay([param], lr=1e-2, weight_decay_rate=decay)
        for g in grads:
            param.grad = torch.from_numpy(g.copy())
            optimizer.step()
        np.testing.assert_allclose(param.detach().numpy(), param_tf, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(optimizer.state[param]["adam_m"].numpy(), m_tf, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(optimizer.state[param]["adam_v"].numpy(), v_tf, rtol=1e-6, atol=1e-9)
    # Without bias correction the first step moves each weight by lr * 0.1 g / (sqrt(0.001) |g| + eps).
    param = torch.nn.Parameter(torch.zeros(3))
    param.grad = torch.tensor([1.0, -2.0, 0.5])
    AdamWeightDecay([param], lr=1.0).step()
    assert param.detach().numpy() == pytest.approx(-0.1 * np.sign([1.0, -2.0, 0.5]) / np.sqrt(0.001), rel=1e-4)


def test_decay_skips_layer_norm_and_biases_by_their_tf_names(sample_vocab_dir):
    from pretrain.torch_backend.model import ElectraPretrainer, tf_variable_names

    config = make_config(sample_vocab_dir)
    model = ElectraPretrainer(config)
    optimizer = build_optimizer(model, config)
    names = tf_variable_names(model)
    tf_name = {id(p): names[n][0] for n, p in model.named_parameters()}
    decay, no_decay = ({tf_name[id(p)] for p in g["params"]} for g in optimizer.param_groups)
    assert [g["weight_decay_rate"] for g in optimizer.param_groups] == [0.01, 0.0]
    assert decay | no_decay == {tf for tf, _ in names.values()} and not decay & no_decay
    assert all(re.search("LayerNorm|bias", n) for n in no_decay) and not any(re.search("LayerNorm|bias", n)
                                                                           for n in decay)
    assert {"generator_predictions/output_bias", "electra/embeddings/LayerNorm/gamma"} <= no_decay
    assert {"electra/embeddings/word_embeddings", "discriminator_predictions/dense_1/kernel"} <= decay


def test_a_table_reached_only_by_lookups_counts_in_the_norm_row_by_looked_up_row_as_tf(sample_vocab_dir):
    """TF's gradient of such a table is IndexedSlices; tf.clip_by_global_norm sums its values' squares
    without first adding up the rows of a token looked up twice. Upstream's graph does the same."""
    from configure_pretraining import BertConfig
    from pretrain.torch_backend.model import Embeddings

    torch.manual_seed(0)
    embeddings = Embeddings(BertConfig(vocab_size=20, hidden_size=8, embedding_size=8, max_position_embeddings=8,
                                       hidden_dropout_prob=0.0))
    embeddings.lookup_only = True
    ids = torch.tensor([[1, 5, 5, 5, 7, 1]])
    looked_up = []

    def keep(module, inputs, output):
        output.retain_grad()
        looked_up.append(output)

    embeddings.word_embeddings.register_forward_hook(keep)
    out = embeddings(ids, torch.zeros_like(ids))
    (out * torch.randn(out.shape)).sum().backward()
    rows = looked_up[0].grad[0].numpy()
    table = embeddings.word_embeddings.weight
    others = [p for n, p in embeddings.named_parameters() if n != "word_embeddings.weight"]

    def tf_norm(tf):
        sparse = tf.IndexedSlices(tf.constant(rows), tf.constant(ids[0].numpy()), tf.constant([20, 8]))
        return tf.clip_by_global_norm([sparse] + [tf.constant(p.grad.numpy()) for p in others], 1.0)[1]

    expected = tf_run(tf_norm)
    dense = torch.sqrt(sum((p.grad ** 2).sum() for p in [table] + others))
    assert float(dense) < float(expected) * 0.999  # duplicates summed first would give less
    assert float(clip_by_global_norm(embeddings.parameters(), 1.0)) == pytest.approx(float(expected), rel=1e-6)
    assert table.tf_lookup_sq_norm is None  # used up: the next step counts its own gradients
