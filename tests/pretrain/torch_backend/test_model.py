"""pretrain/torch_backend/model.py: the network against transformers' ELECTRA and our TF graph, on real text."""
import numpy as np
import pytest
import torch

from configure_pretraining import PretrainingConfig, generator_config
from pretrain.torch_backend.model import ElectraPretrainer, tf_variable_names
from util.tokenization import KoTokenizer

SEQ = 32
SIZES = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 256,
         "max_position_embeddings": SEQ}
SETTINGS = {"default": {}, "untied_embeddings": {"untied_generator_embeddings": True},
            "tied_generator": {"untied_generator": False}, "uniform": {"uniform_generator": True},
            "bert": {"electra_objective": False}}


def make_config(vocab_dir, sizes=SIZES, **overrides):
    vocab = f"{vocab_dir}/vocab.txt"
    config = PretrainingConfig("m", vocab_dir, vocab_file=vocab, max_seq_length=SEQ, embedding_size=32,
                               model_hparam_overrides=dict(sizes), **overrides)
    config.validate()
    config.attach_vocab(KoTokenizer.from_vocab(vocab, "wordpiece", False))
    return config


@pytest.fixture(scope="module")
def batch(sample_corpus_file, sample_vocab_dir):
    """64 examples of real sample text: [CLS] a [SEP] b [SEP], cut to 32 tokens or padded."""
    tokenizer = KoTokenizer.from_vocab(f"{sample_vocab_dir}/vocab.txt", "wordpiece", False)
    with open(sample_corpus_file, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()][:128]
    cls, sep = tokenizer.convert_tokens_to_ids(["[CLS]", "[SEP]"])
    ids, mask, types = (np.zeros((64, SEQ), np.int64) for _ in range(3))
    for i in range(64):
        a, b = tokenizer.encode(lines[2 * i])[: SEQ // 2 - 2], tokenizer.encode(lines[2 * i + 1])
        row = ([cls] + a + [sep] + b)[: SEQ - 1] + [sep]
        # Every fourth example ends early: padding of every length.
        row = row[: max(4, len(row) - 3 * (i % 4))] if i % 4 else row
        ids[i, :len(row)], mask[i, :len(row)] = row, 1
        types[i, len(a) + 2:len(row)] = 1
    assert 0 < mask.sum() < mask.size
    return {k: torch.from_numpy(v) for k, v in (("input_ids", ids), ("input_mask", mask), ("segment_ids", types))}


def electra_config(cfg, cls):
    from convert.to_transformers import electra_config as hf_config

    return hf_config(cfg.to_dict(), cls.__name__, cfg.vocab_size)


def test_state_dicts_load_strict_into_transformers_and_give_its_logits_on_real_text(sample_vocab_dir, batch):
    from transformers import ElectraForMaskedLM, ElectraForPreTraining

    torch.manual_seed(0)
    config = make_config(sample_vocab_dir)
    model = ElectraPretrainer(config).eval()
    disc = ElectraForPreTraining(electra_config(config.bert_config(), ElectraForPreTraining)).eval()
    disc.load_state_dict(model.discriminator.state_dict(), strict=True)
    gen = ElectraForMaskedLM(electra_config(generator_config(config), ElectraForMaskedLM)).eval()
    gen.load_state_dict(model.generator.state_dict(), strict=True)
    ids, mask, types = batch["input_ids"], batch["input_mask"], batch["segment_ids"]
    with torch.no_grad():
        ours = model.discriminator(ids, mask, types)
        theirs = disc(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        assert ours.shape == theirs.shape == ids.shape
        assert torch.allclose(ours, theirs, atol=1e-5, rtol=1e-5)
        out = model(ids, mask, types, generator=torch.Generator().manual_seed(0))
        full = gen(input_ids=out["masked_input_ids"], attention_mask=mask, token_type_ids=types).logits
        at_masked = torch.gather(full, 1, out["masked_lm_positions"][..., None].expand(-1, -1, full.shape[-1]))
        assert torch.allclose(out["mlm_logits"], at_masked, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("setting", ["tied_generator", "bert"])
def test_encoder_shared_with_the_generator_loads_into_transformers_masked_lm(sample_vocab_dir, setting):
    from transformers import ElectraForMaskedLM

    config = make_config(sample_vocab_dir, **SETTINGS[setting])
    model = ElectraPretrainer(config)
    gen = ElectraForMaskedLM(electra_config(config.bert_config(), ElectraForMaskedLM))
    gen.load_state_dict(model.generator.state_dict(), strict=True)
    if setting == "tied_generator":  # upstream reuses the discriminator's encoder
        assert model.generator.electra is model.discriminator.electra
    else:
        assert model.discriminator is None


def test_generator_and_discriminator_share_the_embeddings_and_one_gradient_accumulates(sample_vocab_dir, batch):
    config = make_config(sample_vocab_dir)
    model = ElectraPretrainer(config)
    gen, disc = model.generator.electra, model.discriminator.electra
    assert gen.embeddings is disc.embeddings  # word, position, token type and their LayerNorm
    assert gen.embeddings_project is not disc.embeddings_project  # generator/embeddings_project is its own
    assert model.generator.generator_lm_head.weight is disc.embeddings.word_embeddings.weight
    assert gen.encoder.layer[0].attention.self.query.weight.shape == (16, 16)  # a quarter of 64
    out = model(**batch, generator=torch.Generator().manual_seed(0))
    shared = disc.embeddings.word_embeddings.weight
    mlm, = torch.autograd.grad(config.gen_weight * out["mlm_loss"], shared, retain_graph=True)
    rtd, = torch.autograd.grad(config.disc_weight * out["disc_loss"], shared, retain_graph=True)
    total, = torch.autograd.grad(out["total_loss"], shared)
    assert mlm.abs().max() > 0 and rtd.abs().max() > 0
    assert torch.allclose(total, mlm + rtd, atol=1e-6)

    untied = ElectraPretrainer(make_config(sample_vocab_dir, untied_generator_embeddings=True))
    assert untied.generator.electra.embeddings is not untied.discriminator.electra.embeddings
    assert untied.generator.electra.embeddings.word_embeddings.weight.shape[1] == 16  # the generator's width
    assert not hasattr(untied.generator.electra, "embeddings_project")


def test_losses_and_labels_follow_the_weights_and_the_samples(sample_vocab_dir, batch):
    config = make_config(sample_vocab_dir, gen_weight=2.0, disc_weight=50.0)
    out = ElectraPretrainer(config)(**batch, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out["total_loss"], 2.0 * out["mlm_loss"] + 50.0 * out["disc_loss"])
    w = out["masked_lm_weights"]
    assert torch.allclose(out["mlm_loss"], (out["mlm_example_loss"] * w).sum() / (w.sum() + 1e-6))
    original = batch["input_ids"]
    replaced = out["fake_input_ids"] != original
    assert torch.equal(out["disc_labels"].bool(), replaced)  # a sample equal to the original is not "replaced"
    chosen = torch.zeros_like(replaced).scatter_(1, out["masked_lm_positions"], w.bool())
    assert not (replaced & ~chosen).any() and replaced.sum() > 0
    assert torch.equal(out["real_tokens"].bool(), batch["input_mask"].bool() & (original != 2) & (original != 3))
    assert torch.equal(out["disc_preds"], (out["disc_probs"] > 0.5).long())

    bert = ElectraPretrainer(make_config(sample_vocab_dir, electra_objective=False))(**batch)
    assert "disc_loss" not in bert and torch.equal(bert["total_loss"], bert["mlm_loss"])
    uniform = ElectraPretrainer(make_config(sample_vocab_dir, uniform_generator=True))(**batch)
    assert uniform["mlm_loss"].item() == pytest.approx(np.log(config.vocab_size), rel=1e-5)


def test_sampling_divides_the_logits_by_the_temperature_and_can_disallow_the_original(sample_vocab_dir, batch):
    from pretrain.torch_backend import masking

    def sampled(**overrides):
        torch.manual_seed(0)
        config = make_config(sample_vocab_dir, **overrides)
        return config, ElectraPretrainer(config)(**batch, generator=torch.Generator().manual_seed(1))

    samples = []
    for temperature in (0.5, 2.0):
        config, out = sampled(temperature=temperature)
        # The same draws replayed: the masking's, then Gumbel noise on logits / temperature.
        replay = torch.Generator().manual_seed(1)
        masked = masking.mask(batch["input_ids"], batch["input_mask"], config.mask_prob,
                              config.max_predictions_per_seq, config.mask_id, config.special_ids, replay)
        assert torch.equal(masked.positions, out["masked_lm_positions"])
        expected = masking.sample_from_softmax(out["mlm_logits"] / temperature, None, replay)
        assert torch.equal(out["sampled_ids"], expected)
        samples.append(out["sampled_ids"])
    assert not torch.equal(*samples)  # same weights, masks and noise: the temperature alone differs

    # Gumbel noise from float32 uniforms lies within [-3.1, 16.7]: where the top two logits differ by more
    # than the temperature times that range, the sample is the argmax. At 1e-6 that is nearly every slot
    # (random weights leave top-two gaps near 1e-4, which 1e-4 would not separate from the noise).
    temperature = 1e-6
    _, cold = sampled(temperature=temperature)
    top_two = cold["mlm_logits"].detach().topk(2, dim=-1).values
    clear = (top_two[..., 0] - top_two[..., 1]) / temperature > 20.0
    assert clear.float().mean() > 0.9
    assert torch.equal(cold["sampled_ids"][clear], cold["masked_lm_preds"][clear])
    _, disallowed = sampled(temperature=temperature, disallow_correct=True)
    slots = disallowed["masked_lm_weights"].bool()
    assert not (disallowed["sampled_ids"] == disallowed["masked_lm_ids"])[slots].any()


def test_tf_variable_names_give_every_parameter_one_tf_name(sample_vocab_dir):
    model = ElectraPretrainer(make_config(sample_vocab_dir))
    names = tf_variable_names(model)
    assert len(names) == len(list(model.parameters())) == len({tf for tf, _ in names.values()})
    assert names["discriminator.electra.embeddings.word_embeddings.weight"] == (
        "electra/embeddings/word_embeddings", False)
    assert names["generator.electra.embeddings_project.weight"] == ("generator/embeddings_project/kernel", True)
    assert names["discriminator.discriminator_predictions.dense_prediction.weight"] == (
        "discriminator_predictions/dense_1/kernel", True)


def test_explicit_attention_and_sdpa_compute_the_same_step_and_auto_picks_by_device(sample_vocab_dir, batch):
    from pretrain.torch_backend.model import attention_for

    results = {}
    for attention in ("sdpa", "explicit"):
        torch.manual_seed(0)
        sizes = dict(SIZES, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        model = ElectraPretrainer(make_config(sample_vocab_dir, sizes=sizes), attention=attention)
        out = model(**batch, generator=torch.Generator().manual_seed(0))
        out["total_loss"].backward()
        query = model.discriminator.electra.encoder.layer[0].attention.self.query.weight
        results[attention] = (out["total_loss"].detach(), out["disc_probs"].detach(), query.grad)
    for sdpa, explicit in zip(results["sdpa"], results["explicit"]):
        assert torch.allclose(sdpa, explicit, rtol=1e-5, atol=1e-6)
    assert results["sdpa"][2].abs().max() > 0  # the padding's -10000 reaches both alike
    assert attention_for(torch.device("cpu")) == "explicit" and attention_for(torch.device("cuda")) == "sdpa"
    assert attention_for(torch.device("cpu"), "sdpa") == "sdpa"
    with pytest.raises(ValueError, match="attention 'fused' is not one of"):
        ElectraPretrainer(make_config(sample_vocab_dir), attention="fused")
