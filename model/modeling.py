"""The transformer encoder ELECTRA shares with BERT, in TF1 graph mode.

Variable names follow upstream ELECTRA's checkpoints exactly (``electra/embeddings/...``,
``electra/encoder/layer_N/attention/self/query/kernel``, ...) because the converter and
transformers' ``load_tf_weights_in_electra`` find weights by those names.

``compute_dtype`` lets the matrix multiplications run in bfloat16 (TPU, or a CPU with
AVX-512 BF16) while variables, layer norms and softmaxes stay float32: weights are cast
where they are used, so checkpoints are always float32.
"""
import copy
import math

import tensorflow.compat.v1 as tf

# BertConfig is plain data, kept TF-free in configure_pretraining (the torch backend reads it too).
from configure_pretraining import BERT_CONFIG_KEYS, BertConfig  # noqa: F401


def create_initializer(initializer_range=0.02):
    return tf.truncated_normal_initializer(stddev=initializer_range)


def gelu(x):
    """Exact (erf) GELU, as upstream BERT/ELECTRA and transformers' "gelu"."""
    return x * 0.5 * (1.0 + tf.math.erf(x / math.sqrt(2.0)))


def get_activation(name):
    acts = {"gelu": gelu, "relu": tf.nn.relu, "tanh": tf.tanh, "linear": None}
    if name not in acts:
        raise ValueError(f"unsupported activation {name!r}")
    return acts[name]


def glorot_initializer():
    """What ``tf.layers.dense`` draws when upstream passes no kernel_initializer."""
    return tf.glorot_uniform_initializer()


def dense(x, units, name, activation=None, initializer_range=0.02, kernel_initializer=None):
    """``tf.layers.dense``'s variables (``name/kernel``, ``name/bias``), computed in x's dtype.

    The kernel is truncated normal(initializer_range) unless ``kernel_initializer`` is given.
    """
    if kernel_initializer is None:
        kernel_initializer = create_initializer(initializer_range)
    with tf.variable_scope(name):
        kernel = tf.get_variable("kernel", [x.shape[-1], units], initializer=kernel_initializer)
        bias = tf.get_variable("bias", [units], initializer=tf.zeros_initializer())
    shape = get_shape_list(x)
    y = tf.matmul(tf.reshape(x, [-1, shape[-1]]), tf.cast(kernel, x.dtype))
    y = tf.nn.bias_add(y, tf.cast(bias, x.dtype))
    if activation is not None:
        y = activation(y)
    return tf.reshape(y, shape[:-1] + [units])


def layer_norm(x, name="LayerNorm", epsilon=1e-12):
    """Layer norm over the last axis, in float32 whatever x's dtype; variables ``LayerNorm/{gamma,beta}``."""
    with tf.variable_scope(name):
        width = x.shape[-1]
        gamma = tf.get_variable("gamma", [width], initializer=tf.ones_initializer())
        beta = tf.get_variable("beta", [width], initializer=tf.zeros_initializer())
    x32 = tf.cast(x, tf.float32)
    mean, variance = tf.nn.moments(x32, [-1], keepdims=True)
    y = (x32 - mean) * tf.math.rsqrt(variance + epsilon) * gamma + beta
    return tf.cast(y, x.dtype)


def dropout(x, rate):
    if not rate:
        return x
    return tf.nn.dropout(x, rate=rate)


def get_shape_list(tensor):
    """Static dimensions as ints, dynamic ones as scalar tensors."""
    static = tensor.shape.as_list()
    dynamic = tf.shape(tensor)
    return [dim if dim is not None else dynamic[i] for i, dim in enumerate(static)]


def embedding_lookup(input_ids, vocab_size, embedding_size, initializer_range, use_one_hot):
    """Token embeddings and the table (the generator's output layer reuses the table)."""
    table = tf.get_variable("word_embeddings", [vocab_size, embedding_size],
                            initializer=create_initializer(initializer_range))
    if use_one_hot:  # a matmul is faster than a gather on TPU
        flat = tf.one_hot(tf.reshape(input_ids, [-1]), depth=vocab_size)
        output = tf.matmul(flat, table)
        output = tf.reshape(output, get_shape_list(input_ids) + [embedding_size])
    else:
        output = tf.nn.embedding_lookup(table, input_ids)
    return output, table


def embedding_postprocessor(token_embeddings, token_type_ids, config, dropout_prob):
    """Adds token-type and position embeddings, then layer norm and dropout."""
    batch_size, seq_length, width = get_shape_list(token_embeddings)
    token_type_table = tf.get_variable("token_type_embeddings", [config.type_vocab_size, width],
                                       initializer=create_initializer(config.initializer_range))
    # A one-hot matmul: the type vocabulary is tiny, and this is what upstream does.
    one_hot_types = tf.one_hot(tf.reshape(token_type_ids, [-1]), depth=config.type_vocab_size)
    output = token_embeddings + tf.reshape(tf.matmul(one_hot_types, token_type_table),
                                           [batch_size, seq_length, width])
    position_table = tf.get_variable("position_embeddings", [config.max_position_embeddings, width],
                                     initializer=create_initializer(config.initializer_range))
    output += tf.expand_dims(position_table[:seq_length], 0)
    return dropout(layer_norm(output), dropout_prob)


def attention_layer(x, attention_adder, batch_size, seq_length, num_heads, head_size, dropout_prob,
                    initializer_range):
    """Multi-head self-attention on a [batch*seq, hidden] matrix; returns the same shape."""

    def heads(t):
        return tf.transpose(tf.reshape(t, [batch_size, seq_length, num_heads, head_size]), [0, 2, 1, 3])

    width = num_heads * head_size
    query = heads(dense(x, width, "query", initializer_range=initializer_range))
    key = heads(dense(x, width, "key", initializer_range=initializer_range))
    value = heads(dense(x, width, "value", initializer_range=initializer_range))
    scores = tf.matmul(query, key, transpose_b=True)
    # Softmax in float32: bfloat16 logits lose the small differences that matter here.
    scores = tf.cast(scores, tf.float32) * (1.0 / math.sqrt(head_size)) + attention_adder
    probs = dropout(tf.cast(tf.nn.softmax(scores), x.dtype), dropout_prob)
    context = tf.transpose(tf.matmul(probs, value), [0, 2, 1, 3])
    return tf.reshape(context, [batch_size * seq_length, width])


def transformer(x, input_mask, config, is_training):
    """The encoder stack, scopes ``layer_N/...`` as upstream; x is [batch, seq, hidden]."""
    hidden_dropout = config.hidden_dropout_prob if is_training else 0.0
    attention_dropout = config.attention_probs_dropout_prob if is_training else 0.0
    batch_size, seq_length, hidden = get_shape_list(x)
    head_size = config.hidden_size // config.num_attention_heads
    # Padding is masked by adding -10000 to its attention logits (computed once for all layers).
    attention_adder = (1.0 - tf.cast(input_mask[:, None, None, :], tf.float32)) * -10000.0
    activation = get_activation(config.hidden_act)
    prev = tf.reshape(x, [-1, hidden])
    for layer in range(config.num_hidden_layers):
        with tf.variable_scope(f"layer_{layer}"):
            with tf.variable_scope("attention"):
                with tf.variable_scope("self"):
                    context = attention_layer(prev, attention_adder, batch_size, seq_length,
                                              config.num_attention_heads, head_size, attention_dropout,
                                              config.initializer_range)
                with tf.variable_scope("output"):
                    attention_output = dense(context, config.hidden_size, "dense",
                                             initializer_range=config.initializer_range)
                    attention_output = layer_norm(dropout(attention_output, hidden_dropout) + prev)
            with tf.variable_scope("intermediate"):
                intermediate = dense(attention_output, config.intermediate_size, "dense", activation,
                                     config.initializer_range)
            with tf.variable_scope("output"):
                output = dense(intermediate, config.hidden_size, "dense",
                               initializer_range=config.initializer_range)
                prev = layer_norm(dropout(output, hidden_dropout) + attention_output)
    return tf.reshape(prev, [batch_size, seq_length, hidden])


class BertModel:
    """One encoder: embeddings (shared under ``electra/embeddings`` unless untied) + transformer.

    ``scope`` is ``electra`` for the discriminator and ``generator`` for the generator; the
    token/position/type embeddings live under ``electra/embeddings`` for both unless
    ``untied_embeddings``, and ``<scope>/embeddings_project`` maps them to the hidden size
    when the two differ.
    """

    def __init__(self, config, is_training, input_ids, input_mask, token_type_ids, scope="electra",
                 untied_embeddings=False, use_one_hot_embeddings=False, compute_dtype=tf.float32):
        config = copy.deepcopy(config)
        dropout_prob = config.hidden_dropout_prob if is_training else 0.0
        embedding_scope = (scope if untied_embeddings else "electra") + "/embeddings"
        with tf.variable_scope(embedding_scope, reuse=tf.AUTO_REUSE):
            token_embeddings, self.embedding_table = embedding_lookup(
                input_ids, config.vocab_size, config.embedding_size, config.initializer_range,
                use_one_hot_embeddings)
            embeddings = embedding_postprocessor(token_embeddings, token_type_ids, config, dropout_prob)
        embeddings = tf.cast(embeddings, compute_dtype)
        with tf.variable_scope(scope):
            if config.embedding_size != config.hidden_size:
                # Upstream builds this with tf.layers.dense's default (Glorot uniform), not
                # truncated normal 0.02: with 0.02 the projected embeddings are ~5x smaller.
                embeddings = dense(embeddings, config.hidden_size, "embeddings_project",
                                   kernel_initializer=glorot_initializer())
            with tf.variable_scope("encoder"):
                self.sequence_output = transformer(embeddings, input_mask, config, is_training)

    def get_sequence_output(self):
        return self.sequence_output

    def get_embedding_table(self):
        return self.embedding_table
