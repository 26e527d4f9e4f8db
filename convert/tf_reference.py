"""An independent TF forward pass of upstream ELECTRA, computed straight from a checkpoint.

It follows upstream model/modeling.py and run_pretraining.py op for op (embedding sum,
contrib layer_norm with epsilon 1e-12, -10000 attention mask adder, erf GELU, the
discriminator and generator heads) and reads each variable by its upstream name, without
the converter's name table, so agreement with the transformers model proves both the
names and the arithmetic.
"""
import math

import numpy as np

_EPSILON = 1e-12


def _activation(name):
    import tensorflow as tf

    acts = {
        "gelu": lambda x: x * 0.5 * (1.0 + tf.math.erf(x / math.sqrt(2.0))),
        "relu": tf.nn.relu,
        "tanh": tf.tanh,
        "linear": lambda x: x,
    }
    if name not in acts:
        from util.errors import UserInputError

        raise UserInputError(f"hidden_act {name!r} is not one upstream ELECTRA defines "
                             f"({', '.join(sorted(acts))})")
    return acts[name]


class ReferenceElectra:
    """Discriminator and generator logits of a checkpoint, computed with TF ops (eager)."""

    name = "TF"  # what the parity lines call this side
    compared = "PyTorch"  # and the converted models

    def __init__(self, variables, arch):
        self.variables = variables
        self.arch = arch

    def _w(self, name):
        import tensorflow as tf

        return tf.constant(self.variables.get(name), dtype=tf.float32)

    def _layer_norm(self, x, scope):
        import tensorflow as tf

        mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
        return tf.nn.batch_normalization(x, mean, variance, self._w(f"{scope}/beta"),
                                         self._w(f"{scope}/gamma"), _EPSILON)

    def _dense(self, x, scope, activation=None):
        import tensorflow as tf

        y = tf.tensordot(x, self._w(f"{scope}/kernel"), axes=[[-1], [0]]) + self._w(f"{scope}/bias")
        return activation(y) if activation else y

    def _encoder(self, cfg, scope, emb_scope, input_ids, input_mask, token_type_ids):
        import tensorflow as tf

        seq_length = input_ids.shape[1]
        x = tf.gather(self._w(f"{emb_scope}/embeddings/word_embeddings"), input_ids)
        x += tf.gather(self._w(f"{emb_scope}/embeddings/token_type_embeddings"), token_type_ids)
        x += self._w(f"{emb_scope}/embeddings/position_embeddings")[:seq_length][None]
        x = self._layer_norm(x, f"{emb_scope}/embeddings/LayerNorm")
        if x.shape[-1] != cfg["hidden_size"]:
            x = self._dense(x, f"{scope}/embeddings_project")
        heads = cfg["num_attention_heads"]
        head_size = cfg["hidden_size"] // heads
        act = _activation(cfg["hidden_act"])
        adder = (1.0 - tf.cast(input_mask, tf.float32))[:, None, None, :] * -10000.0

        def split_heads(t):  # [B, T, N*H] -> [B, N, T, H]
            return tf.transpose(tf.reshape(t, [t.shape[0], seq_length, heads, head_size]), [0, 2, 1, 3])

        for n in range(cfg["num_hidden_layers"]):
            layer = f"{scope}/encoder/layer_{n}"
            q, k, v = (split_heads(self._dense(x, f"{layer}/attention/self/{p}")) for p in ("query", "key", "value"))
            scores = tf.matmul(q, k, transpose_b=True) / math.sqrt(float(head_size)) + adder
            context = tf.matmul(tf.nn.softmax(scores), v)
            context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [x.shape[0], seq_length, -1])
            attention = self._layer_norm(self._dense(context, f"{layer}/attention/output/dense") + x,
                                         f"{layer}/attention/output/LayerNorm")
            hidden = self._dense(attention, f"{layer}/intermediate/dense", act)
            x = self._layer_norm(self._dense(hidden, f"{layer}/output/dense") + attention,
                                 f"{layer}/output/LayerNorm")
        return x

    def discriminator_logits(self, input_ids, input_mask, token_type_ids):
        """[B, T] replaced-token logits, as upstream's _get_discriminator_output."""
        import tensorflow as tf

        cfg = self.arch.discriminator
        x = self._encoder(cfg, "electra", "electra", input_ids, input_mask, token_type_ids)
        hidden = self._dense(x, "discriminator_predictions/dense", _activation(cfg["hidden_act"]))
        out = f"discriminator_predictions/{self.arch.discriminator_output_name}"
        return np.asarray(tf.squeeze(self._dense(hidden, out), -1))

    def generator_logits(self, input_ids, input_mask, token_type_ids):
        """[B, T, V] MLM logits at every position, as upstream's get_token_logits."""
        import tensorflow as tf

        cfg = self.arch.generator
        x = self._encoder(cfg, self.arch.generator_scope, self.arch.generator_embeddings_scope,
                          input_ids, input_mask, token_type_ids)
        hidden = self._dense(x, "generator_predictions/dense", _activation(cfg["hidden_act"]))
        hidden = self._layer_norm(hidden, "generator_predictions/LayerNorm")
        table = self._w(f"{self.arch.generator_embeddings_scope}/embeddings/word_embeddings")
        logits = tf.tensordot(hidden, table, axes=[[-1], [1]]) + self._w("generator_predictions/output_bias")
        return np.asarray(logits)
