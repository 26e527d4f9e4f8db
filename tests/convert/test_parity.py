"""The parity check itself: fresh padded inputs, and it catches a wrong conversion."""
import numpy as np

from tiny_checkpoint import bert_config, make_model_dir

from convert import checkpoint, parity
from convert.pipeline import _load, convert_checkpoint
from convert.tf_reference import ReferenceElectra


def test_random_inputs_are_fresh_padded_and_well_formed():
    ids, mask, types, seed = parity.random_inputs(100, 32, batch_size=6)
    ids2, _, _, seed2 = parity.random_inputs(100, 32, batch_size=6)
    assert seed != seed2 and not np.array_equal(ids, ids2)
    assert ids.shape == mask.shape == types.shape == (6, 32)
    assert mask[0].all() and (mask == 0).any()  # one full row, some padding
    assert ((mask[:, 1:] <= mask[:, :-1])).all()  # right padding
    assert (ids[mask == 0] == 0).all() and (types[mask == 0] == 0).all()
    assert ((types[:, 1:] >= types[:, :-1]) | (mask[:, 1:] == 0)).all()  # segment A then B
    replay = parity.random_inputs(100, 32, batch_size=6, seed=seed)
    assert all(np.array_equal(a, b) for a, b in zip(replay[:3], (ids, mask, types)))


def test_relative_error():
    assert parity.relative_error([1.0, -2.0], [1.0, -2.0]) == 0.0
    assert abs(parity.relative_error([1.0, -2.2], [1.0, -2.0]) - 0.1) < 1e-12
    assert parity.relative_error(np.zeros((2, 3)), np.zeros((3, 2))) == float("inf")


def test_parity_catches_swapped_weights(tmp_path):
    """A converter that put the key kernel where the query belongs would be reported, not trusted."""
    import torch

    disc, gen = bert_config(32, 2, 2, 16, 120), bert_config(16, 1, 1, 16, 120)
    model_dir = make_model_dir(str(tmp_path / "model"), disc, gen)
    convert_checkpoint(model_dir, str(tmp_path / "disc"), str(tmp_path / "gen"), verify=False, log=lambda _: None)
    prefix, _ = checkpoint.resolve_checkpoint(model_dir)
    variables = checkpoint.CheckpointVariables(prefix)
    arch = checkpoint.describe(variables, *checkpoint.find_pretrain_config(model_dir))
    reference = ReferenceElectra(variables, arch)
    model, generator = _load(str(tmp_path / "disc"), "discriminator"), _load(str(tmp_path / "gen"), "generator")
    results, _ = parity.check(reference, model, generator)
    assert all(r.ok for r in results)

    attention = model.electra.encoder.layer[1].attention.self
    generator_attention = generator.electra.encoder.layer[0].attention.self
    with torch.no_grad():
        for a in (attention, generator_attention):
            query = a.query.weight.clone()
            a.query.weight.copy_(a.key.weight)
            a.key.weight.copy_(query)
    results, _ = parity.check(reference, model, generator)
    assert [r.ok for r in results] == [False, False]
    assert "FAILED" in parity.report(results, 0)
