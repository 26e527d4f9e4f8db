"""The one configuration object for ELECTRA pre-training.

Built in this order: defaults (upstream ELECTRA as Dialog-KoELECTRA used it) -> debug
settings -> the model-size preset -> the user's overrides (a JSON dict or a .json file).
Every key below can be overridden; anything else is an error naming the closest known key.
"""
import difflib
import json
import os

from util.errors import UserInputError

# name: (default, type, help). ``None`` defaults are filled by a preset or derived.
HPARAMS = {
    "debug": (False, bool, "tiny model and few steps, for trying things out"),
    "do_train": (True, bool, "pre-train"),
    "do_eval": (False, bool, "evaluate generator/discriminator; writes results/unsup_results.txt"),
    "electra_objective": (True, bool, "replaced-token detection; False trains a BERT masked LM"),
    "gen_weight": (1.0, float, "weight of the generator's MLM loss"),
    "disc_weight": (50.0, float, "weight of the discriminator's loss"),
    "mask_prob": (0.15, float, "fraction of non-special tokens masked"),
    "mask_with_replacement": (False, bool, "upstream's position sampling: with replacement, count from "
                              "input_mask ([CLS]/[SEP] included); duplicates mask fewer tokens"),
    "learning_rate": (5e-4, float, "peak learning rate"),
    "lr_decay_power": (1.0, float, "polynomial decay power after warmup (1 = linear)"),
    "weight_decay_rate": (0.01, float, "AdamW weight decay (not on LayerNorm or biases)"),
    "num_warmup_steps": (10000, int, "linear warmup steps"),
    "iterations_per_loop": (200, int, "steps per TPU loop; also the step-log and summary interval"),
    "save_checkpoints_steps": (1000, int, "checkpoint interval"),
    "keep_checkpoint_max": (5, int, "checkpoints kept (0 keeps all)"),
    "verify_records": (False, bool, "check every TFRecord's checksums before training (reads the whole "
                       "dataset: after copying it, not every run; docs/dataset.md)"),
    "num_train_steps": (1000000, int, "total training steps"),
    "num_eval_steps": (100, int, "evaluation batches"),
    "model_size": ("small", str, "preset: small, base or large"),
    "model_hparam_overrides": ({}, dict, "BertConfig fields overriding the preset (max_position_embeddings, ...)"),
    "hidden_size": (None, int, "discriminator hidden size (preset)"),
    "num_hidden_layers": (None, int, "discriminator layers (preset)"),
    "num_attention_heads": (None, int, "discriminator attention heads (preset)"),
    "intermediate_size": (None, int, "discriminator feed-forward size (preset)"),
    "embedding_size": (None, int, "token embedding size (preset; hidden size if unset)"),
    "vocab_size": (None, int, "vocabulary size; read from vocab_file when unset, checked when set"),
    "do_lower_case": (None, bool, "lower-case input; read from the vocab's tokenizer_config.json when unset"),
    "tokenizer_type": (None, str, "wordpiece or mecab_wordpiece; read from the vocab when unset"),
    "uniform_generator": (False, bool, "sample replacements uniformly instead of from a generator"),
    "untied_generator_embeddings": (False, bool, "give the generator its own token embeddings"),
    "generator_embedding_size": (None, int, "with untied_generator_embeddings: the width of the generator's own "
                                            "embeddings (default its hidden size, upstream's rule; a warm start "
                                            "reads it from the checkpoint)"),
    "untied_generator": (True, bool, "separate generator network (False: generator = discriminator)"),
    "generator_layers": (1.0, float, "generator layers as a fraction of the discriminator's"),
    "generator_hidden_size": (0.25, float, "generator hidden size as a fraction of the discriminator's"),
    "disallow_correct": (False, bool, "never let the generator sample the original token"),
    "temperature": (1.0, float, "sampling temperature of the generator"),
    "max_seq_length": (128, int, "tokens per example; the dataset's (stats.json) when unset, which must agree when set"),
    "max_predictions_per_seq": (None, int, "prediction slots per example; int((mask_prob + 0.005) * max_seq_length)"),
    "train_batch_size": (128, int, "training batch size (global: split over TPU cores, GPUs and workers)"),
    "eval_batch_size": (128, int, "evaluation batch size"),
    "use_tpu": (False, bool, "run on Cloud TPU (also --use_tpu)"),
    "mixed_precision": (False, bool, "fp16 on GPU, bfloat16 on TPU/CPU (also --mixed_precision)"),
    "num_tpu_cores": (8, int, "TPU cores (8 for a v3-8; 32, 128, ... for a pod slice)"),
    "distribution": ("none", str, "none, mirrored (all local GPUs) or multi_worker (machines in TF_CONFIG); "
                                  "also --distribution"),
    "num_gpus": (None, int, "GPUs per machine for mirrored/multi_worker; default every visible GPU"),
    "cpu_replicas": (1, int, "replicas on logical CPU devices when a machine has no GPU (tests and "
                             "benchmarks of the distributed path; they share the cores, so no speedup)"),
    "tpu_job_name": (None, str, "TPU worker job name"),
    "tpu_name": (None, str, "Cloud TPU name"),
    "tpu_zone": (None, str, "GCE zone of the TPU"),
    "gcp_project": (None, str, "GCP project of the TPU"),
    "vocab_file": (None, str, "vocab.txt or its directory; default <data_dir>/vocab.txt"),
    "pretrain_tfrecords": (None, str, "TFRecord glob(s), comma separated; default found under data_dir"),
    "model_dir": (None, str, "where checkpoints go; default from --model_name"),
    "saved_model": (None, str, "warm start: a TF checkpoint prefix or a directory (its newest checkpoint), or a "
                               "transformers ELECTRA directory; sizes not set are read from it (docs/pretraining.md)"),
    "saved_generator": (None, str, "warm start: a transformers generator directory to go with a transformers "
                                   "saved_model (a TF checkpoint holds its own generator)"),
    "seed": (None, int, "random seed (TF: graph-level; torch: weights, dropout, masking and data order)"),
    # The torch backend's alone (pretrain/backend.py rejects them under --backend tf).
    "torch_compile": (False, bool, "torch backend: compile the model with torch.compile"),
    "gradient_accumulation_steps": (1, int, "torch backend: micro-batches per optimizer step; train_batch_size "
                                            "stays the global batch, split over them and over the torchrun ranks"),
}

PRESETS = {
    "small": dict(hidden_size=256, num_hidden_layers=12, num_attention_heads=4, intermediate_size=1024,
                  embedding_size=128),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                 embedding_size=768, generator_hidden_size=0.33333, max_seq_length=512, learning_rate=2e-4,
                 train_batch_size=256),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                  embedding_size=1024, mask_prob=0.25, max_seq_length=512, learning_rate=2e-4,
                  train_batch_size=2048),
}

DISTRIBUTIONS = ("none", "mirrored", "multi_worker")

DEBUG = dict(train_batch_size=8, num_train_steps=20, eval_batch_size=4, iterations_per_loop=1, num_eval_steps=2,
             hidden_size=144, num_hidden_layers=3, num_attention_heads=4, intermediate_size=576)

BERT_DEFAULTS = dict(hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                     max_position_embeddings=512, type_vocab_size=2, initializer_range=0.02)


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

    Plain data (no TF), read by both backends, the step log and the warm start.
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
        # Upstream's untied generator embeds at its hidden width; a released generator (KoELECTRA's: 128
        # under 256) keeps its own, projected up by generator/embeddings_project as the discriminator's is.
        gen.embedding_size = config.generator_embedding_size or hidden
    return gen


def prediction_slots(mask_prob, max_seq_length):
    """Upstream's default max_predictions_per_seq."""
    return int((mask_prob + 0.005) * max_seq_length)


def closest(name, known):
    match = difflib.get_close_matches(name, known, n=1, cutoff=0.0)
    return f" (did you mean {match[0]!r}?)" if match else ""


def load_hparams(value):
    """--hparams: a JSON dict string, or the path of a .json file holding one."""
    from util.files import read_json

    if value is None or value == "":
        return {}, "--hparams"
    if os.path.isdir(value):
        raise UserInputError(f"--hparams {value} is a directory; give a .json file or a JSON dict")
    if not (value.endswith(".json") or os.path.isfile(value)):
        if not value.lstrip().startswith(("{", "[")):  # meant as a file name, not as JSON
            raise UserInputError(f"--hparams {value}: no such file, and not a JSON dict either")
        try:
            hparams = json.loads(value)
        except json.JSONDecodeError as e:
            raise UserInputError(f"--hparams: malformed JSON ({e.msg} at column {e.colno})") from None
        source = "--hparams"
    else:
        hparams = read_json(value, "hparams file")
        source = value
    if not isinstance(hparams, dict):
        raise UserInputError(f"{source}: hparams must be a JSON object, not {type(hparams).__name__}")
    return hparams, source


def merge_hparams(values):
    """Several --hparams in order, later keys winning; model_hparam_overrides merge key by key.

    Returns the merged dict and the source an error should name: the last one that set
    anything, or the single file when there is only one.
    """
    merged, sources = {}, []
    for value in values or ["{}"]:
        hparams, source = load_hparams(value)
        overrides = dict(merged.get("model_hparam_overrides", {}))
        overrides.update(hparams.get("model_hparam_overrides", {}))
        merged.update(hparams)
        if overrides:
            merged["model_hparam_overrides"] = overrides
        if hparams:
            sources.append(source)
    return merged, " + ".join(sources) or "--hparams"


class PretrainingConfig:
    """Every pre-training hyperparameter as an attribute; see HPARAMS for meanings."""

    def __init__(self, model_name, data_dir, source="--hparams", **overrides):
        self.model_name = model_name
        self.data_dir = data_dir
        self._source = source
        # What the user set (not a preset or a default): a warm start reads every other size
        # from the checkpoint, and a user setting that contradicts it is an error.
        self.user_set = frozenset(overrides) | frozenset(overrides.get("model_hparam_overrides") or {})
        for name, value in overrides.items():
            if name not in HPARAMS:
                raise UserInputError(f"{source}: unknown hparam {name!r}{closest(name, list(HPARAMS))}")
        for name, (default, _, _) in HPARAMS.items():
            setattr(self, name, dict(default) if isinstance(default, dict) else default)
        if overrides.get("debug"):
            self.__dict__.update(DEBUG)
        size = overrides.get("model_size", self.model_size)
        if size not in PRESETS:
            raise UserInputError(f"{source}: model_size {size!r} is not one of {', '.join(PRESETS)}")
        for name, value in PRESETS[size].items():
            if not (overrides.get("debug") and name in DEBUG):
                setattr(self, name, value)
        for name, value in overrides.items():
            setattr(self, name, value)
        self._check_types()
        if self.embedding_size is None:
            self.embedding_size = self.hidden_size
        if self.max_predictions_per_seq is None:
            self.max_predictions_per_seq = prediction_slots(self.mask_prob, self.max_seq_length)
        for name in self.model_hparam_overrides:
            if name not in BERT_DEFAULTS and name not in PRESETS["small"] and name != "vocab_size":
                known = list(BERT_DEFAULTS) + list(PRESETS["small"])
                raise UserInputError(f"{source}: unknown model_hparam_overrides key {name!r}{closest(name, known)}")
        # The overrides win over the top-level sizes, as upstream; fold them in so every
        # size is read from one place.
        for name in PRESETS["small"]:
            if name in self.model_hparam_overrides:
                setattr(self, name, self.model_hparam_overrides[name])
        if self.model_dir is None:
            if os.path.isabs(model_name) or os.sep in model_name or (os.altsep and os.altsep in model_name):
                self.model_dir = model_name
            else:
                self.model_dir = os.path.join(data_dir, "models", model_name)
        self.results_txt = os.path.join(self.model_dir, "results", "unsup_results.txt")
        # Token ids the masking needs; filled in by attach_vocab().
        self.mask_id = None
        self.special_ids = ()
        # What a warm start loads (pretrain/warm_start.WarmStart); filled in by pretrain/training.prepare().
        self.warm_start = None

    def _check_types(self):
        for name, (_, kind, _) in HPARAMS.items():
            value = getattr(self, name)
            if value is None:
                continue
            ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                ok = True
                setattr(self, name, float(value))
            if not ok:
                raise UserInputError(f"{self._source}: {name} must be {kind.__name__}, got {value!r}")

    def bert_config(self):
        """The discriminator's encoder sizes (a BertConfig)."""
        values = dict(BERT_DEFAULTS)
        values.update(vocab_size=self.vocab_size, hidden_size=self.hidden_size,
                      num_hidden_layers=self.num_hidden_layers, num_attention_heads=self.num_attention_heads,
                      intermediate_size=self.intermediate_size, embedding_size=self.embedding_size)
        values.update(self.model_hparam_overrides)
        return BertConfig.from_dict(values)

    def validate(self):
        """Impossible sizes and settings, one clear line each (before any graph is built)."""
        src = self._source
        positive = ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "embedding_size",
                    "max_seq_length", "train_batch_size", "eval_batch_size", "num_train_steps", "num_eval_steps",
                    "iterations_per_loop", "save_checkpoints_steps", "num_tpu_cores", "max_predictions_per_seq",
                    "gradient_accumulation_steps"]
        for name in positive:
            if getattr(self, name) is None or getattr(self, name) <= 0:
                raise UserInputError(f"{src}: {name} must be a positive integer, got {getattr(self, name)!r}")
        if self.generator_embedding_size is not None:
            if self.generator_embedding_size <= 0:
                raise UserInputError(f"{src}: generator_embedding_size must be a positive integer, "
                                     f"got {self.generator_embedding_size!r}")
            if not self.untied_generator_embeddings:
                raise UserInputError(f"{src}: generator_embedding_size {self.generator_embedding_size} needs "
                                     "untied_generator_embeddings: true (tied, the generator uses the "
                                     "discriminator's embeddings)")
        for name in ("num_warmup_steps", "keep_checkpoint_max"):
            if getattr(self, name) < 0:
                raise UserInputError(f"{src}: {name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 < self.mask_prob < 1.0:
            raise UserInputError(f"{src}: mask_prob must be between 0 and 1, got {self.mask_prob}")
        for name in ("temperature", "generator_hidden_size", "generator_layers", "learning_rate"):
            if getattr(self, name) <= 0:
                raise UserInputError(f"{src}: {name} must be > 0, got {getattr(self, name)}")
        if self.lr_decay_power < 0 or self.weight_decay_rate < 0 or self.gen_weight < 0 or self.disc_weight < 0:
            raise UserInputError(f"{src}: lr_decay_power, weight_decay_rate, gen_weight and disc_weight must be >= 0")
        if not (self.do_train or self.do_eval):
            raise UserInputError(f"{src}: nothing to do: do_train and do_eval are both false")
        if self.tokenizer_type is not None and self.tokenizer_type not in ("wordpiece", "mecab_wordpiece"):
            raise UserInputError(f"{src}: tokenizer_type {self.tokenizer_type!r} is not wordpiece or mecab_wordpiece")
        if self.max_predictions_per_seq > self.max_seq_length:
            raise UserInputError(f"{src}: max_predictions_per_seq ({self.max_predictions_per_seq}) exceeds "
                                 f"max_seq_length ({self.max_seq_length})")
        bert = self.bert_config()
        if bert.max_position_embeddings < self.max_seq_length:
            raise UserInputError(f"{src}: max_seq_length {self.max_seq_length} exceeds max_position_embeddings "
                                 f"{bert.max_position_embeddings}")
        for label, cfg in (("", bert), ("generator ", generator_config(self))):
            if cfg.hidden_size <= 0 or cfg.num_hidden_layers <= 0:
                raise UserInputError(f"{src}: {label}hidden size {cfg.hidden_size} and layers "
                                     f"{cfg.num_hidden_layers} must be positive (generator_hidden_size, "
                                     "generator_layers are fractions of the discriminator's)")
            if cfg.hidden_size % cfg.num_attention_heads:
                raise UserInputError(f"{src}: {label}hidden size {cfg.hidden_size} is not divisible by its "
                                     f"{cfg.num_attention_heads} attention heads")
        if self.distribution not in DISTRIBUTIONS:
            raise UserInputError(f"{src}: distribution {self.distribution!r} is not one of "
                                 f"{', '.join(DISTRIBUTIONS)}{closest(self.distribution, DISTRIBUTIONS)}")
        if self.use_tpu and self.distribution != "none":
            raise UserInputError(f"{src}: distribution {self.distribution!r} is for GPUs/CPUs; a TPU (use_tpu) "
                                 "spreads over its num_tpu_cores by itself")
        if self.num_gpus is not None and self.num_gpus < 0 or self.cpu_replicas <= 0:
            raise UserInputError(f"{src}: num_gpus must be >= 0 and cpu_replicas > 0")
        if self.use_tpu and self.train_batch_size % self.num_tpu_cores:
            raise UserInputError(f"{src}: train_batch_size {self.train_batch_size} is not divisible by "
                                 f"num_tpu_cores {self.num_tpu_cores}")

    def attach_vocab(self, tokenizer):
        """Take vocab size, casing and special ids from the vocab, refusing a disagreeing vocab_size."""
        if self.vocab_size is None:
            self.vocab_size = tokenizer.vocab_size
        elif self.vocab_size != tokenizer.vocab_size:
            raise UserInputError(f"{self._source}: vocab_size {self.vocab_size} disagrees with "
                                 f"{tokenizer.vocab_file} ({tokenizer.vocab_size} tokens)")
        if self.tokenizer_type is None:
            self.tokenizer_type = tokenizer.tokenizer_type
        if self.do_lower_case is None:
            self.do_lower_case = tokenizer.do_lower_case
        self.mask_id = tokenizer.mask_id
        self.special_ids = (tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id, tokenizer.pad_id)

    def to_dict(self):
        """Everything written to pretrain_config.json: all hparams, derived paths and both encoders."""
        values = {name: getattr(self, name) for name in HPARAMS}
        values.update(model_name=self.model_name, data_dir=self.data_dir, results_txt=self.results_txt,
                      max_position_embeddings=self.bert_config().max_position_embeddings,
                      bert_config=self.bert_config().to_dict(),
                      generator_bert_config=generator_config(self).to_dict())
        return values
