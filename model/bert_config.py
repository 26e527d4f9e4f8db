"""The sizes of one encoder and the generator's size rule, as plain data: no TensorFlow.

Both pre-training backends build their networks from these, and the config, the step log's
FLOP count and the warm-start plan read them without importing either framework.
"""

BERT_CONFIG_KEYS = (
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
    "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
    "type_vocab_size", "initializer_range", "embedding_size",
)


class BertConfig:
    """Sizes of one encoder (the discriminator or the generator)."""

    def __init__(self, vocab_size, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, hidden_act="gelu", hidden_dropout_prob=0.1,
                 attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=2,
                 initializer_range=0.02, embedding_size=None):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        self.embedding_size = hidden_size if embedding_size is None else embedding_size

    @classmethod
    def from_dict(cls, values):
        return cls(**{k: values[k] for k in BERT_CONFIG_KEYS if k in values})

    def to_dict(self):
        return {k: getattr(self, k) for k in BERT_CONFIG_KEYS}


def generator_config(config):
    """The generator's encoder sizes: a fraction of the discriminator's, as upstream.

    Upstream's rule (google-research/electra, ``get_generator_config``): hidden size and layers
    scaled by ``generator_hidden_size`` and ``generator_layers``, a feed-forward of 4x the
    hidden size and one head per 64 units; with tied embeddings the generator keeps the
    discriminator's embedding size (and projects), untied it embeds at its own hidden size.
    """
    disc = config.bert_config()
    if not (config.electra_objective and config.untied_generator):
        return disc
    hidden = int(round(disc.hidden_size * config.generator_hidden_size))
    gen = BertConfig.from_dict(disc.to_dict())
    gen.hidden_size = hidden
    gen.num_hidden_layers = int(round(disc.num_hidden_layers * config.generator_layers))
    gen.intermediate_size = 4 * hidden
    gen.num_attention_heads = max(1, hidden // 64)
    if config.untied_generator_embeddings:
        gen.embedding_size = hidden
    return gen
