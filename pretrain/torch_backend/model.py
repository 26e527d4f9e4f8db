"""ELECTRA pre-training in PyTorch: the TF graph of model/electra_model.py and model/modeling.py.

Parameter names are transformers' (``electra.encoder.layer.0.attention.self.query.weight``),
so ``model.discriminator.state_dict()`` loads into ``ElectraForPreTraining`` and
``model.generator.state_dict()`` into ``ElectraForMaskedLM`` as they are; ``tf_variable_names``
maps them to upstream's TF names through convert/to_transformers' one name table.

What upstream does, and so this does:
- the generator's encoder is a fraction of the discriminator's (configure_pretraining.generator_config);
- the generator and discriminator share every embedding under TF's ``electra/embeddings`` (word,
  position, token type, their LayerNorm) through the same modules, so one gradient accumulates
  as under TF's variable reuse; ``generator/embeddings_project`` is the generator's own;
  ``untied_generator_embeddings`` gives the generator embeddings of its own;
  ``untied_generator=False`` makes the generator's encoder the discriminator's;
- the generator's LM head runs on the masked positions only and scores against the word
  embeddings (tied) plus an output bias;
- initialisers: truncated normal (2 sigma) at initializer_range for every kernel and embedding,
  zero biases, LayerNorm ones/zeros, and Glorot uniform for the two layers upstream builds with
  ``tf.layers.dense``'s default: ``embeddings_project`` and the discriminator's output layer
  (``discriminator_predictions/dense_1``, transformers' ``dense_prediction``);
- attention masks padding by adding -10000 to its logits; GELU is the exact (erf) one.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from configure_pretraining import generator_config
from pretrain.torch_backend import masking

ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "tanh": torch.tanh, "linear": lambda x: x}


def activation(name):
    if name not in ACTIVATIONS:
        raise ValueError(f"unsupported activation {name!r}")
    return ACTIVATIONS[name]


class Embeddings(nn.Module):
    """Token + token-type + position embeddings, LayerNorm, dropout (TF's ``electra/embeddings``)."""

    def __init__(self, cfg):
        super().__init__()
        width = cfg.embedding_size
        self.word_embeddings = nn.Embedding(cfg.vocab_size, width)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, width)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, width)
        self.LayerNorm = nn.LayerNorm(width, eps=1e-12)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)
        self.lookup_only = False  # set by ElectraPretrainer: see count_lookup_rows

    def forward(self, input_ids, token_type_ids):
        seq_length = input_ids.shape[1]
        words = self.word_embeddings(input_ids)
        if self.lookup_only and words.requires_grad:
            words.register_hook(self.count_lookup_rows)
        x = words + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings.weight[None, :seq_length]
        return self.dropout(self.LayerNorm(x))

    def count_lookup_rows(self, grad):
        """TF's clip_by_global_norm counts a table reached only by lookups row by looked-up row.

        Its gradient is then IndexedSlices, whose norm TF takes over the rows as looked up, a
        token seen twice counted twice, not summed first (upstream's graph does the same). The
        squared norm of the lookup output's gradient is that figure; it is kept on the table
        (``tf_lookup_sq_norm``) for optim.clip_by_global_norm, for the gradients now in ``.grad``.
        """
        weight = self.word_embeddings.weight
        fresh = weight.grad is None or getattr(weight, "tf_lookup_sq_norm", None) is None
        total = grad.detach().float().pow(2).sum()
        weight.tf_lookup_sq_norm = total if fresh else weight.tf_lookup_sq_norm + total


ATTENTION = ("auto", "sdpa", "explicit")


def attention_for(device, implementation="auto"):
    """The attention ``implementation`` runs on ``device``: auto is SDPA on GPUs, explicit on CPUs."""
    if implementation == "auto":
        return "sdpa" if device.type == "cuda" else "explicit"
    return implementation


def explicit_attention(q, k, v, attention_adder, dropout_prob):
    """softmax(q k^T / sqrt(d) + adder), dropout, times v: TF's graph op for op."""
    scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    probs = torch.softmax(scores + attention_adder.to(scores.dtype), dim=-1)
    if dropout_prob:
        probs = F.dropout(probs, dropout_prob)
    return torch.matmul(probs, v)


class SelfAttention(nn.Module):
    """Multi-head attention through PyTorch's SDPA or ``explicit_attention`` (``implementation``).

    Same function either way. On a CPU SDPA's fused kernel takes no dropout, so training runs its
    math fallback; the explicit ops are TF's own sequence. bench/bench_pretraining.py times both
    (its torch_*_attention rows).
    """

    def __init__(self, cfg):
        super().__init__()
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.num_heads = cfg.num_attention_heads
        self.dropout_prob = cfg.attention_probs_dropout_prob
        self.implementation = "auto"

    def forward(self, x, attention_adder):
        batch_size, seq_length, width = x.shape
        heads = lambda t: t.view(batch_size, seq_length, self.num_heads, -1).transpose(1, 2)  # noqa: E731
        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        dropout_prob = self.dropout_prob if self.training else 0.0
        if attention_for(x.device, self.implementation) == "sdpa":
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_adder.to(q.dtype),
                                                     dropout_p=dropout_prob)
        else:
            context = explicit_attention(q, k, v, attention_adder, dropout_prob)
        return context.transpose(1, 2).reshape(batch_size, seq_length, width)


class DenseResidualNorm(nn.Module):
    """dense -> dropout -> + residual -> LayerNorm (transformers' SelfOutput and Output)."""

    def __init__(self, n_in, n_out, dropout_prob):
        super().__init__()
        self.dense = nn.Linear(n_in, n_out)
        self.LayerNorm = nn.LayerNorm(n_out, eps=1e-12)
        self.dropout = nn.Dropout(dropout_prob)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self = SelfAttention(cfg)
        self.output = DenseResidualNorm(cfg.hidden_size, cfg.hidden_size, cfg.hidden_dropout_prob)

    def forward(self, x, attention_adder):
        return self.output(self.self(x, attention_adder), x)


class Intermediate(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.act = activation(cfg.hidden_act)

    def forward(self, x):
        return self.act(self.dense(x))


class Layer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attention = Attention(cfg)
        self.intermediate = Intermediate(cfg)
        self.output = DenseResidualNorm(cfg.intermediate_size, cfg.hidden_size, cfg.hidden_dropout_prob)

    def forward(self, x, attention_adder):
        x = self.attention(x, attention_adder)
        return self.output(self.intermediate(x), x)


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layer = nn.ModuleList([Layer(cfg) for _ in range(cfg.num_hidden_layers)])

    def forward(self, x, attention_adder):
        for layer in self.layer:
            x = layer(x, attention_adder)
        return x


def glorot_linear(n_in, n_out):
    """A layer upstream builds with tf.layers.dense's default kernel initializer (Glorot uniform)."""
    layer = nn.Linear(n_in, n_out)
    layer.glorot = True
    return layer


class ElectraEncoder(nn.Module):
    """One encoder (transformers' ElectraModel); ``embeddings`` given = shared with another encoder."""

    def __init__(self, cfg, embeddings=None):
        super().__init__()
        self.embeddings = embeddings if embeddings is not None else Embeddings(cfg)
        if cfg.embedding_size != cfg.hidden_size:
            self.embeddings_project = glorot_linear(cfg.embedding_size, cfg.hidden_size)
        self.encoder = Encoder(cfg)

    def forward(self, input_ids, input_mask, token_type_ids):
        x = self.embeddings(input_ids, token_type_ids)
        if hasattr(self, "embeddings_project"):
            x = self.embeddings_project(x)
        # Padding is masked by adding -10000 to its attention logits, as TF's graph does.
        attention_adder = (1.0 - input_mask[:, None, None, :].float()) * -10000.0
        return self.encoder(x, attention_adder)


class DiscriminatorPredictions(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.act = activation(cfg.hidden_act)
        # Glorot as upstream's tf.layers.dense(hidden, units=1): with truncated normal 0.02 the
        # bias learns the replaced-token prior first and the discriminator collapses.
        self.dense_prediction = glorot_linear(cfg.hidden_size, 1)

    def forward(self, x):
        return self.dense_prediction(self.act(self.dense(x))).squeeze(-1)


class Discriminator(nn.Module):
    """transformers' ElectraForPreTraining: per-token logits that the token was replaced."""

    def __init__(self, cfg):
        super().__init__()
        self.electra = ElectraEncoder(cfg)
        self.discriminator_predictions = DiscriminatorPredictions(cfg)

    def forward(self, input_ids, input_mask, token_type_ids):
        return self.discriminator_predictions(self.electra(input_ids, input_mask, token_type_ids)).float()


class GeneratorPredictions(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.embedding_size)
        self.act = activation(cfg.hidden_act)
        self.LayerNorm = nn.LayerNorm(cfg.embedding_size, eps=1e-12)

    def forward(self, x):
        return self.LayerNorm(self.act(self.dense(x)))


class Generator(nn.Module):
    """transformers' ElectraForMaskedLM, scoring only the positions asked for."""

    def __init__(self, cfg, electra):
        super().__init__()
        self.electra = electra
        self.generator_predictions = GeneratorPredictions(cfg)
        self.generator_lm_head = nn.Linear(cfg.embedding_size, cfg.vocab_size)
        self.generator_lm_head.weight = electra.embeddings.word_embeddings.weight  # tied, as upstream

    def forward(self, input_ids, input_mask, token_type_ids, positions):
        hidden = masking.gather_positions(self.electra(input_ids, input_mask, token_type_ids), positions)
        return self.generator_lm_head(self.generator_predictions(hidden)).float()


class ElectraPretrainer(nn.Module):
    """Generator + discriminator and their losses for one batch (model/electra_model.PretrainingModel)."""

    def __init__(self, config, attention="auto"):
        """``attention``: one of ATTENTION for every layer (auto: attention_for's choice per device)."""
        super().__init__()
        if attention not in ATTENTION:
            raise ValueError(f"attention {attention!r} is not one of {ATTENTION}")
        if config.vocab_size is None or config.mask_id is None:
            raise ValueError("ElectraPretrainer needs a config after attach_vocab (vocab_size, mask_id)")
        self.config = config
        bert = config.bert_config()
        self.discriminator = Discriminator(bert) if config.electra_objective else None
        if config.uniform_generator:
            self.generator = None
        elif not config.electra_objective:
            self.generator = Generator(bert, ElectraEncoder(bert))  # a BERT masked LM
        elif not config.untied_generator:
            self.generator = Generator(bert, self.discriminator.electra)
        else:
            gen = generator_config(config)
            shared = None if config.untied_generator_embeddings else self.discriminator.electra.embeddings
            self.generator = Generator(gen, ElectraEncoder(gen, embeddings=shared))
        # The discriminator's table is only looked up when no generator scores against it.
        if self.discriminator is not None and (self.generator is None or config.untied_generator_embeddings):
            self.discriminator.electra.embeddings.lookup_only = True
        for module in self.modules():
            if isinstance(module, SelfAttention):
                module.implementation = attention
        self.apply(self._init_weights)

    def _init_weights(self, module):
        std = self.config.bert_config().initializer_range
        # TF's truncated normal redraws values beyond 2 standard deviations. The generator's
        # LM head weight is the word embedding table: drawn again here from the same distribution.
        if isinstance(module, nn.Linear):
            if getattr(module, "glorot", False):
                nn.init.xavier_uniform_(module.weight)
            else:
                nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def mlm_logits(self, masked, input_mask, segment_ids):
        """[B, N, V] float32 logits at the masked positions (zeros for the uniform generator)."""
        if self.generator is None:
            return torch.zeros(masked.positions.shape + (self.config.vocab_size,), device=masked.positions.device)
        return self.generator(masked.input_ids, input_mask, segment_ids, masked.positions)

    def forward(self, input_ids, input_mask, segment_ids, generator=None, fixed=None):
        """The losses and the evaluation tensors for one batch.

        ``generator`` (a torch.Generator) drives the masking and sampling; ``fixed`` replaces
        them with given tensors: ``positions``, ``masked_ids``, ``weights``, ``masked_input_ids``
        and, for the discriminator's input, ``sampled_ids``.
        """
        config = self.config
        input_ids, segment_ids = input_ids.long(), segment_ids.long()
        real_tokens = masking.candidates_mask(input_ids, input_mask, config.special_ids).float()
        if fixed is None:
            masked = masking.mask(input_ids, input_mask, config.mask_prob, config.max_predictions_per_seq,
                                  config.mask_id, config.special_ids, generator, config.mask_with_replacement)
        else:
            masked = masking.Masked(fixed["masked_input_ids"].long(), fixed["positions"].long(),
                                    fixed["masked_ids"].long(), fixed["weights"].float())
        logits = self.mlm_logits(masked, input_mask, segment_ids)
        weights = masked.weights
        mlm_losses = -torch.gather(F.log_softmax(logits, -1), -1, masked.masked_ids[..., None]).squeeze(-1)
        mlm_loss = (weights * mlm_losses).sum() / (weights.sum() + 1e-6)
        out = dict(mlm_loss=mlm_loss, total_loss=config.gen_weight * mlm_loss, mlm_logits=logits,
                   mlm_example_loss=mlm_losses, masked_lm_preds=logits.argmax(-1), masked_lm_ids=masked.masked_ids,
                   masked_lm_weights=weights, masked_lm_positions=masked.positions,
                   masked_input_ids=masked.input_ids, input_mask=input_mask, real_tokens=real_tokens)
        if self.discriminator is None:
            return out

        # The fake sequence: the original with the generator's samples at the masked positions.
        original, _ = masking.scatter_update(masked.input_ids, masked.masked_ids, masked.positions)
        if fixed is not None and "sampled_ids" in fixed:
            sampled = fixed["sampled_ids"].long()
        else:
            disallow = (F.one_hot(masked.masked_ids, config.vocab_size).float()
                        if config.disallow_correct else None)
            sampled = masking.sample_from_softmax(logits.detach() / config.temperature, disallow, generator)
        fake, written = masking.scatter_update(original, sampled, masked.positions)
        labels = written * (fake != original).long()  # a sample equal to the original is not "replaced"

        disc_logits = self.discriminator(fake, input_mask, segment_ids)
        mask = input_mask.float()
        losses = F.binary_cross_entropy_with_logits(disc_logits, labels.float(), reduction="none") * mask
        disc_loss = losses.sum() / (1e-6 + mask.sum())
        out.update(disc_loss=disc_loss, total_loss=out["total_loss"] + config.disc_weight * disc_loss,
                   sampled_ids=sampled, fake_input_ids=fake, disc_logits=disc_logits,
                   disc_example_loss=losses.sum(-1) / (1e-6 + mask.sum(-1)), disc_probs=torch.sigmoid(disc_logits),
                   disc_preds=(disc_logits > 0).long(), disc_labels=labels)
        return out


def _architecture(config):
    from convert.checkpoint import Architecture

    disc = config.bert_config().to_dict()
    if not config.electra_objective:
        return Architecture(discriminator=disc, generator=dict(disc), generator_scope="electra")
    if config.uniform_generator:
        return Architecture(discriminator=disc)
    if not config.untied_generator:
        return Architecture(discriminator=disc, generator=dict(disc), generator_scope="electra")
    return Architecture(discriminator=disc, generator=generator_config(config).to_dict(),
                        generator_embeddings_scope="generator" if config.untied_generator_embeddings else "electra")


def tf_variable_names(model):
    """{parameter name in model.named_parameters(): (TF variable name, transpose?)}.

    From convert/to_transformers' entries (the one table between upstream's TF names and
    transformers'); every parameter must have exactly one TF name and every entry a parameter.
    """
    from convert.to_transformers import discriminator_entries, generator_entries

    arch = _architecture(model.config)
    keys = {}
    if model.discriminator is not None:
        keys.update({f"discriminator.{key}": (tf, t) for tf, _, key, t in discriminator_entries(arch)})
    if model.generator is not None:
        keys.update({f"generator.{key}": (tf, t) for tf, _, key, t in generator_entries(arch)})
    tensors = model.state_dict(keep_vars=True)
    if set(keys) != set(tensors):
        raise AssertionError(f"name table and model disagree: {sorted(set(keys) ^ set(tensors))[:5]}")
    by_param = {}
    for key, tensor in tensors.items():  # shared parameters appear under several keys: one TF name each
        if by_param.setdefault(id(tensor), keys[key]) != keys[key]:
            raise AssertionError(f"{key} is {keys[key][0]} here and {by_param[id(tensor)][0]} elsewhere")
    return {name: by_param[id(param)] for name, param in model.named_parameters()}
