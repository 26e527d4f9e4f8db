"""The fine-tuning config: Dialog-KoELECTRA's YAML schema, key for key, plus a few added keys.

One ``FinetuneConfig`` is built from ``DEFAULTS`` + the YAML + NNI parameters + command-line
overrides, validated once, and then read by attribute everywhere. Values are coerced to the
type of their default because YAML 1.1 reads ``1e-8`` (no dot) as a string, and the original
YAMLs write ``adam_epsilon: 1e-8``.

Paths: ``data_dir``, ``ckpt_dir``, ``config_dir`` and ``model_name_or_path`` are relative to the
YAML's folder; ``train_file``/``dev_file``/``test_file`` are relative to ``data_dir``; values
given on the command line are relative to the current directory. Empty file keys mean absent.
"""
import difflib
import os


from util.errors import UserInputError

# The original Dialog-KoELECTRA keys, in the order its YAMLs list them.
DEFAULTS = {
    "task": None,
    "train_file": None,
    "test_file": None,
    "dev_file": None,
    "config_dir": None,
    "data_dir": ".",
    "ckpt_dir": "ckpt",
    "mecab": False,
    "evaluate_test_during_training": False,
    "eval_all_checkpoints": False,
    "save_optimizer": False,
    "do_lower_case": False,
    "do_train": True,
    "do_eval": True,
    "max_seq_len": 128,
    "num_train_epochs": 3.0,
    "weight_decay": 0.0,
    "gradient_accumulation_steps": 1,
    "adam_epsilon": 1e-8,
    "warmup_proportion": 0.0,
    "max_steps": -1,
    "max_grad_norm": 1.0,
    "no_cuda": False,
    "model_type": "electra",
    "model_name_or_path": None,
    "seed": 42,
    "train_batch_size": 32,
    "eval_batch_size": 64,
    "logging_steps": 100,
    "save_steps": 100,
    "learning_rate": 5e-5,
}

# Keys we add; every one has a default so an original YAML runs unchanged.
ADDED_DEFAULTS = {
    "bf16": False,  # bfloat16 autocast (CPU or CUDA)
    "fp16": False,  # float16 autocast with loss scaling (CUDA only)
    "num_workers": 0,  # DataLoader worker processes
    "num_threads": 0,  # CPU threads for torch; 0 = torch's default (one per core)
    # Batch training examples of similar length together: our speed-up, off by default so a
    # published YAML trains in the originals' order semantics (RandomSampler over all examples).
    "group_by_length": False,
    "save_total_limit": 3,  # checkpoint-N/ kept: the newest N plus the best; 0 keeps all (the originals)
    "resume": True,  # continue from the newest checkpoint-N/ in ckpt_dir/<task>/; false starts over
    "do_reinit": False,  # also --do_reinit on the command line
    "do_nni": False,  # also --do_nni on the command line
    # Score at most this many dev/test examples (a fixed sample; 0 = all). Every logging_steps
    # evaluates the whole test set otherwise: about 60 s for NSMC's 50k reviews on a CPU.
    "max_eval_examples": 0,
    # Train on at most this many training examples (a fixed sample drawn with split_seed; 0 = all).
    "max_train_examples": 0,
    # Hold this fraction of train_file out as the dev set (0 = none), for tasks whose only labelled
    # file at hand is a dev set (KLUE); finetune/splits.py, the task table's split code.
    "dev_split": 0.0,
    "split_seed": 0,  # seed of dev_split and max_train_examples (not of training: that is seed)
    # An ELECTRA generator (ElectraForMaskedLM) as model_name_or_path is refused unless this is true:
    # the discriminator is the model ELECTRA fine-tunes.
    "allow_generator": False,
}
# Task families add their own keys with defaults as ``config_defaults`` on the Task class
# (e.g. KorQuAD's doc_stride); run_finetune passes them in as ``extra_defaults``.

PATH_KEYS_YAML_RELATIVE = ("data_dir", "ckpt_dir", "config_dir")
FILE_KEYS = ("train_file", "dev_file", "test_file")
REQUIRED = ("task", "model_name_or_path")


class FinetuneConfig:
    """Attribute access to the effective settings; ``as_dict()`` for logging and saving."""

    def __init__(self, values, source="<config>", lines=None, origins=None):
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "lines", dict(lines or {}))
        # Keys set by NNI or on the command line: where to say they came from.
        object.__setattr__(self, "origins", dict(origins or {}))

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self._values[name] = value

    def __contains__(self, name):
        return name in self._values

    def get(self, name, default=None):
        return self._values.get(name, default)

    def as_dict(self):
        return dict(self._values)

    def where(self, key):
        """``file:line`` of a key for error messages (the file alone if the line is unknown)."""
        if key in self.origins:
            return self.origins[key]
        line = self.lines.get(key)
        return f"{self.source}:{line}" if line else self.source


def known_defaults(extra=None):
    """Every accepted key with its default; task families may add their own keys."""
    known = dict(DEFAULTS)
    known.update(ADDED_DEFAULTS)
    known.update(extra or {})
    return known


def _suggest(key, known):
    close = difflib.get_close_matches(key, list(known), n=1) or sorted(
        (k for k in known if key.lower() in k or k in key.lower()), key=len)
    return f" (did you mean {close[0]!r}?)" if close else ""


def coerce(key, value, default, where):
    """Convert ``value`` to the type of ``default``; None means absent."""
    if value is None or (isinstance(value, str) and value.strip() == "" and not isinstance(default, bool)):
        return None if default is None or isinstance(default, str) or key in FILE_KEYS else default
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise UserInputError(f"{where}: {key} must be true or false, got {value!r}")
    if isinstance(default, int):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise UserInputError(f"{where}: {key} must be an integer, got {value!r}") from None
        if number != int(number):
            raise UserInputError(f"{where}: {key} must be an integer, got {value!r}")
        return int(number)
    if isinstance(default, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise UserInputError(f"{where}: {key} must be a number, got {value!r}") from None
    if isinstance(value, (dict, list)):
        raise UserInputError(f"{where}: {key} must be a single value, got {value!r}")
    return str(value)


def read_yaml(path):
    """The YAML mapping and the line of each key; syntax errors name the line."""
    import yaml  # here, not at the top: a predictor reads finetune_config.json without pyyaml

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise UserInputError(f"config file not found: {path}") from None
    except UnicodeDecodeError as e:
        raise UserInputError(f"{path}: not UTF-8 ({e.reason})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        values = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserInputError(f"{path}{line}: malformed YAML ({problem})") from None
    if values is None:
        raise UserInputError(f"{path}: the config file is empty")
    if not isinstance(values, dict):
        raise UserInputError(f"{path}:1: expected 'key: value' lines, got a {type(values).__name__}")
    lines = {}
    for key_node, _ in node.value:
        if key_node.value in lines:
            raise UserInputError(f"{path}:{key_node.start_mark.line + 1}: key {key_node.value!r} given twice")
        lines[key_node.value] = key_node.start_mark.line + 1
    return values, lines


def _resolve(path, base):
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base, path))


def load_config(path, nni_params=None, overrides=None, extra_defaults=None):
    """Build and validate the config from a YAML file.

    ``nni_params`` (a flat dict from ``nni.get_next_parameter()``) and ``overrides``
    (``{key: value}`` from the command line) win over the YAML, in that order.
    """
    values, lines = read_yaml(path)
    yaml_dir = os.path.dirname(os.path.abspath(path))
    known = known_defaults(extra_defaults)
    for key in values:
        if key not in known:
            raise UserInputError(f"{path}:{lines[key]}: unknown key {key!r}{_suggest(key, known)}")

    config = {}
    for key, default in known.items():
        where = f"{path}:{lines[key]}" if key in lines else path
        config[key] = coerce(key, values.get(key, default), default, where)
    for key in PATH_KEYS_YAML_RELATIVE:
        if config[key]:
            config[key] = _resolve(config[key], yaml_dir)
    model = config["model_name_or_path"]
    if model and not os.path.isabs(model) and os.path.isdir(os.path.join(yaml_dir, model)):
        config["model_name_or_path"] = _resolve(model, yaml_dir)

    origins = {}
    for source, params in (("NNI parameter", nni_params), ("command-line override", overrides)):
        for key, value in (params or {}).items():
            if key not in known:
                raise UserInputError(f"{source}: unknown key {key!r}{_suggest(key, known)}")
            origins[key] = f"{source} {key}"
            config[key] = coerce(key, value, known[key], origins[key])
            if source == "command-line override" and key in PATH_KEYS_YAML_RELATIVE + FILE_KEYS + ("model_name_or_path",):
                if config[key]:
                    config[key] = os.path.abspath(os.path.expanduser(config[key]))

    result = FinetuneConfig(config, source=path, lines=lines, origins=origins)
    for key in FILE_KEYS:
        if result.get(key):
            result._values[key] = _resolve(result.get(key), result.data_dir or yaml_dir)
    validate(result)
    return result


def validate(config):
    """Check what the YAML says against the file system and against itself."""
    for key in REQUIRED:
        if not config.get(key):
            raise UserInputError(f"{config.source}: required key {key!r} is missing or empty")
    for key in FILE_KEYS:
        path = config.get(key)
        if path and not os.path.isfile(path):
            raise UserInputError(f"{config.where(key)}: {key} not found: {path}")
    if config.do_train and not config.train_file:
        raise UserInputError(f"{config.where('do_train')}: do_train is true but train_file is empty")
    if config.do_eval and not (config.dev_file or config.test_file or config.get("dev_split")):
        raise UserInputError(f"{config.where('do_eval')}: do_eval is true but dev_file and test_file are empty")
    positive = ("max_seq_len", "train_batch_size", "eval_batch_size", "gradient_accumulation_steps")
    for key in positive:
        if config.get(key) is None or config.get(key) <= 0:
            raise UserInputError(f"{config.where(key)}: {key} must be positive, got {config.get(key)}")
    if config.max_steps <= 0 and config.num_train_epochs <= 0 and config.do_train:
        raise UserInputError(f"{config.where('num_train_epochs')}: num_train_epochs must be positive when max_steps is -1")
    if not 0.0 <= config.warmup_proportion <= 1.0:
        raise UserInputError(f"{config.where('warmup_proportion')}: warmup_proportion must be in [0, 1]")
    if config.bf16 and config.fp16:
        raise UserInputError(f"{config.where('fp16')}: choose one of bf16 and fp16")
    if config.num_threads < 0:
        raise UserInputError(f"{config.where('num_threads')}: num_threads must be >= 0")
    if config.save_total_limit < 0:
        raise UserInputError(f"{config.where('save_total_limit')}: save_total_limit must be >= 0 (0 keeps every checkpoint)")
    if config.max_train_examples < 0:
        raise UserInputError(f"{config.where('max_train_examples')}: max_train_examples must be >= 0 (0 = all), "
                             f"got {config.max_train_examples}")
    if not 0.0 <= config.dev_split < 1.0:
        raise UserInputError(f"{config.where('dev_split')}: dev_split must be in [0, 1), got {config.dev_split}")
    if config.dev_split > 0 and config.dev_file:
        raise UserInputError(f"{config.where('dev_split')}: dev_split {config.dev_split} holds a dev set out of "
                             f"train_file, and dev_file is given too: keep one")
    if config.dev_split > 0 and not config.train_file:
        raise UserInputError(f"{config.where('dev_split')}: dev_split {config.dev_split} holds a dev set out of "
                             "train_file, and train_file is empty")
    if config.num_workers < 0:
        raise UserInputError(f"{config.where('num_workers')}: num_workers must be >= 0")


def parse_overrides(items):
    """``["key=value", ...]`` from ``--set`` into a dict; YAML syntax for the value."""
    import yaml

    overrides = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserInputError(f"--set {item!r}: expected key=value")
        overrides[key.strip()] = yaml.safe_load(value) if value.strip() else None
    return overrides
