"""Replaced-token detection: a small generator fills masked positions, the discriminator
spots which tokens were replaced. ``electra_objective=False`` trains a plain BERT MLM.

Scopes (and so checkpoint names) are upstream ELECTRA's: the discriminator under
``electra/``, the generator's encoder under ``generator/`` (its token embeddings shared
under ``electra/embeddings`` unless ``untied_generator_embeddings``), the heads under
``generator_predictions/`` and ``discriminator_predictions/``.
"""
import collections

import tensorflow.compat.v1 as tf

from configure_pretraining import generator_config
from model import masking, modeling

SoftmaxOutput = collections.namedtuple("SoftmaxOutput", ["logits", "loss", "per_example_loss", "preds"])
DiscOutput = collections.namedtuple("DiscOutput", ["loss", "per_example_loss", "probs", "preds", "labels"])


class PretrainingModel:
    """Builds the losses and the evaluation tensors for one batch of features."""

    def __init__(self, config, features, is_training, compute_dtype=tf.float32, seed=None):
        self.config = config
        bert_config = config.bert_config()
        inputs = masking.features_to_inputs(features)
        # The text's own tokens (no padding, [CLS] or [SEP]): the ones a collapse shows on.
        self.real_tokens = tf.cast(masking.candidates_mask(inputs.input_ids, inputs.input_mask,
                                                           config.special_ids), tf.float32)
        masked = masking.mask(inputs, config.mask_prob, config.max_predictions_per_seq, config.mask_id,
                              config.special_ids, seed=seed, with_replacement=config.mask_with_replacement)
        self.masked_inputs = masked
        encoder_args = dict(is_training=is_training, use_one_hot_embeddings=config.use_tpu,
                            compute_dtype=compute_dtype)

        if config.uniform_generator:
            generator = None
        elif config.electra_objective and config.untied_generator:
            generator = modeling.BertModel(generator_config(config), input_ids=masked.input_ids,
                                           input_mask=masked.input_mask, token_type_ids=masked.segment_ids,
                                           scope="generator",
                                           untied_embeddings=config.untied_generator_embeddings, **encoder_args)
        else:
            generator = modeling.BertModel(bert_config, input_ids=masked.input_ids, input_mask=masked.input_mask,
                                           token_type_ids=masked.segment_ids, **encoder_args)
        mlm = self._masked_lm_output(masked, generator, bert_config)
        self.mlm_output = mlm
        self.mlm_loss = mlm.loss
        self.total_loss = config.gen_weight * mlm.loss

        self.disc_output = None
        self.sampled_ids = None
        if config.electra_objective:
            fake_inputs, labels, self.sampled_ids = self._fake_data(masked, mlm.logits)
            reuse = not config.untied_generator
            with tf.variable_scope(tf.get_variable_scope(), reuse=reuse):
                discriminator = modeling.BertModel(bert_config, input_ids=fake_inputs.input_ids,
                                                   input_mask=fake_inputs.input_mask,
                                                   token_type_ids=fake_inputs.segment_ids, **encoder_args)
            self.disc_output = self._discriminator_output(fake_inputs, discriminator, labels, bert_config)
            self.total_loss += config.disc_weight * self.disc_output.loss

    def _masked_lm_output(self, inputs, generator, bert_config):
        """Logits over the vocabulary at the masked positions only, tied to the input embeddings."""
        vocab_size = bert_config.vocab_size
        with tf.variable_scope("generator_predictions"):
            if generator is None:  # uniform generator: every token equally likely
                logits = tf.zeros(modeling.get_shape_list(inputs.masked_lm_ids) + [vocab_size])
            else:
                table = generator.get_embedding_table()
                hidden = masking.gather_positions(generator.get_sequence_output(), inputs.masked_lm_positions)
                hidden = modeling.dense(hidden, table.shape[-1], "dense",
                                        modeling.get_activation(bert_config.hidden_act),
                                        bert_config.initializer_range)
                hidden = modeling.layer_norm(hidden)
                output_bias = tf.get_variable("output_bias", [vocab_size], initializer=tf.zeros_initializer())
                logits = tf.matmul(hidden, tf.cast(table, hidden.dtype), transpose_b=True)
                logits = tf.nn.bias_add(tf.cast(logits, tf.float32), output_bias)
        log_probs = tf.nn.log_softmax(logits)
        label_log_probs = -tf.reduce_sum(log_probs * tf.one_hot(inputs.masked_lm_ids, depth=vocab_size), -1)
        weights = inputs.masked_lm_weights
        loss = tf.reduce_sum(weights * label_log_probs) / (tf.reduce_sum(weights) + 1e-6)
        preds = tf.argmax(logits, -1, output_type=tf.int32)
        return SoftmaxOutput(logits=logits, loss=loss, per_example_loss=label_log_probs, preds=preds)

    def _fake_data(self, masked, mlm_logits):
        """Original sequence with the generator's samples at the masked positions; labels = replaced."""
        inputs = masking.unmask(masked)
        disallow = (tf.one_hot(masked.masked_lm_ids, depth=self.config.vocab_size)
                    if self.config.disallow_correct else None)
        keys = masking.example_keys(inputs.input_ids) + 2
        sampled = tf.stop_gradient(masking.sample_from_softmax(mlm_logits / self.config.temperature, disallow, keys))
        fake_ids, written = masking.scatter_update(inputs.input_ids, sampled, masked.masked_lm_positions)
        # A sample equal to the original token is not "replaced".
        labels = written * (1 - tf.cast(tf.equal(fake_ids, inputs.input_ids), tf.int32))
        return inputs._replace(input_ids=fake_ids), labels, sampled

    def _discriminator_output(self, inputs, discriminator, labels, bert_config):
        with tf.variable_scope("discriminator_predictions"):
            hidden = modeling.dense(discriminator.get_sequence_output(), bert_config.hidden_size, "dense",
                                    modeling.get_activation(bert_config.hidden_act),
                                    bert_config.initializer_range)
            # Glorot uniform, as upstream's tf.layers.dense(hidden, units=1). With truncated
            # normal 0.02 this layer starves the encoder of gradient: the bias learns the
            # replaced-token prior first and the discriminator collapses to a constant.
            logits = tf.squeeze(modeling.dense(hidden, 1, "dense_1",
                                               kernel_initializer=modeling.glorot_initializer()), -1)
            logits = tf.cast(logits, tf.float32)
        weights = tf.cast(inputs.input_mask, tf.float32)
        losses = tf.nn.sigmoid_cross_entropy_with_logits(logits=logits, labels=tf.cast(labels, tf.float32)) * weights
        per_example_loss = tf.reduce_sum(losses, -1) / (1e-6 + tf.reduce_sum(weights, -1))
        loss = tf.reduce_sum(losses) / (1e-6 + tf.reduce_sum(weights))
        probs = tf.nn.sigmoid(logits)
        preds = tf.cast(logits > 0, tf.int32)
        return DiscOutput(loss=loss, per_example_loss=per_example_loss, probs=probs, preds=preds, labels=labels)

    def real_token_stats(self):
        """Batch discriminator figures over real tokens, for the step log and TensorBoard.

        ``disc_auc_real`` is the rank (Mann-Whitney) AUC of the probabilities; ties fall in
        index order, so a constant output scores about 0.5. ``disc_prob_std_real`` is their
        spread across tokens: a collapsed discriminator gives every token the same value.
        """
        d = self.disc_output
        real = tf.reshape(self.real_tokens, [-1])
        probs = tf.reshape(d.probs, [-1])
        labels = tf.reshape(tf.cast(d.labels, tf.float32), [-1]) * real
        preds = tf.reshape(tf.cast(d.preds, tf.float32), [-1]) * real
        n_real = tf.reduce_sum(real)
        n_pos = tf.reduce_sum(labels)
        n_neg = n_real - n_pos
        # Other tokens sort below every real one (probabilities are >= 0), so subtracting
        # their count gives ranks 1..n_real among the real tokens.
        scores = tf.where(real > 0, probs, -tf.ones_like(probs))
        ranks = tf.cast(tf.argsort(tf.argsort(scores, stable=True), stable=True), tf.float32) + 1.0
        ranks -= tf.cast(tf.size(real), tf.float32) - n_real
        auc = ((tf.reduce_sum(ranks * labels) - n_pos * (n_pos + 1.0) / 2.0)
               / tf.maximum(n_pos * n_neg, 1.0))
        mean = tf.reduce_sum(probs * real) / tf.maximum(n_real, 1.0)
        std = tf.sqrt(tf.reduce_sum(real * tf.square(probs - mean)) / tf.maximum(n_real, 1.0))
        true_pos = tf.reduce_sum(preds * labels)
        return {"disc_auc_real": auc, "disc_prob_std_real": std,
                "disc_precision_real": true_pos / tf.maximum(tf.reduce_sum(preds), 1.0),
                "disc_recall_real": true_pos / tf.maximum(n_pos, 1.0)}

    def accuracies(self):
        """Batch MLM and discriminator accuracies, for the training summaries."""
        masked = self.masked_inputs
        correct = tf.cast(tf.equal(self.mlm_output.preds, masked.masked_lm_ids), tf.float32)
        result = {"mlm_accuracy": tf.reduce_sum(correct * masked.masked_lm_weights)
                  / (tf.reduce_sum(masked.masked_lm_weights) + 1e-6)}
        if self.disc_output is not None:
            d = self.disc_output
            mask = tf.cast(masked.input_mask, tf.float32)
            correct = tf.cast(tf.equal(d.preds, d.labels), tf.float32)
            result["disc_accuracy"] = tf.reduce_sum(correct * mask) / (tf.reduce_sum(mask) + 1e-6)
            result["disc_accuracy_real"] = (tf.reduce_sum(correct * self.real_tokens)
                                            / (tf.reduce_sum(self.real_tokens) + 1e-6))
            result.update(self.real_token_stats())
        return result

    def eval_metrics(self):
        """(metric_fn, tensors) for TPUEstimatorSpec: upstream ELECTRA's unsupervised metrics."""
        masked = self.masked_inputs
        tensors = {"masked_lm_ids": masked.masked_lm_ids, "masked_lm_preds": self.mlm_output.preds,
                   "masked_lm_weights": masked.masked_lm_weights,
                   "mlm_loss": self.mlm_output.per_example_loss, "input_mask": masked.input_mask,
                   "real_tokens": self.real_tokens}
        if self.disc_output is not None:
            d = self.disc_output
            tensors.update(disc_loss=d.per_example_loss, disc_labels=d.labels, disc_probs=d.probs,
                           disc_preds=d.preds, sampled_ids=self.sampled_ids)
        keys = sorted(tensors)
        disc_weight = self.config.disc_weight

        def metric_fn(*values):
            t = dict(zip(keys, values))
            flat = lambda name: tf.reshape(t[name], [-1])  # noqa: E731
            metrics = {
                "masked_lm_accuracy": tf.metrics.accuracy(flat("masked_lm_ids"), flat("masked_lm_preds"),
                                                          weights=flat("masked_lm_weights")),
                "masked_lm_loss": tf.metrics.mean(flat("mlm_loss"), weights=flat("masked_lm_weights")),
            }
            if "disc_loss" in t:
                metrics["sampled_masked_lm_accuracy"] = tf.metrics.accuracy(
                    flat("masked_lm_ids"), flat("sampled_ids"), weights=flat("masked_lm_weights"))
                if disc_weight > 0:
                    mask = t["input_mask"]
                    labels, preds = t["disc_labels"], t["disc_preds"]
                    metrics["disc_loss"] = tf.metrics.mean(t["disc_loss"])
                    metrics["disc_auc"] = tf.metrics.auc(labels * mask, t["disc_probs"] * tf.cast(mask, tf.float32))
                    metrics["disc_accuracy"] = tf.metrics.accuracy(labels, preds, weights=mask)
                    metrics["disc_precision"] = tf.metrics.accuracy(labels, preds, weights=preds * mask)
                    metrics["disc_recall"] = tf.metrics.accuracy(labels, preds, weights=labels * mask)
                    # Upstream's AUC above scores padding as certain "original" tokens, which
                    # alone gives ~0.84 on short examples; these count the text's tokens only.
                    real = t["real_tokens"]
                    metrics["disc_auc_real_tokens"] = tf.metrics.auc(labels, t["disc_probs"], weights=real)
                    metrics["disc_accuracy_real_tokens"] = tf.metrics.accuracy(labels, preds, weights=real)
                    metrics["disc_prob_mean_real_tokens"] = tf.metrics.mean(t["disc_probs"], weights=real)
                    metrics["disc_prob_sq_mean_real_tokens"] = tf.metrics.mean(tf.square(t["disc_probs"]),
                                                                               weights=real)
            return metrics

        return metric_fn, [tensors[k] for k in keys]
