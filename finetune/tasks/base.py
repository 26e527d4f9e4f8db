"""What every fine-tuning task provides to the shared trainer.

One small module per task family (nsmc.py, pair_classification.py, ner.py, korquad.py, ...)
subclasses ``Task`` and registers itself with ``@register("name", aliases...)``. The trainer
in ``finetune/trainer.py`` knows nothing task-specific: it reads examples, builds features,
batches them with dynamic padding, trains the model the task builds, and hands the raw
model outputs back to the task for predictions and metrics.
"""
import abc

TASKS = {}


def register(name, *aliases):
    """Class decorator: make a Task findable by its family name and aliases."""

    def wrap(cls):
        cls.name = name
        for key in (name, *aliases):
            TASKS[key] = cls
        return cls

    return wrap


def task_family(task_name):
    """The registered family a YAML ``task`` value belongs to, e.g. ``nsmc_small_v1`` -> ``nsmc``.

    The longest registered name that prefixes the value wins, so ``naver-ner_x`` is not
    taken for a task called ``naver``.
    """
    from util.errors import UserInputError

    normalized = task_name.lower()
    matches = [key for key in TASKS if normalized == key or normalized.startswith(key)]
    if not matches:
        known = ", ".join(sorted({cls.name for cls in TASKS.values()}))
        raise UserInputError(f"task {task_name!r} is not a known task family (known: {known}); for your own "
                             "sentence-classification data name it intent_<name> (finetune/tasks/sentence_classification.py)")
    return max(matches, key=len)


def get_task(task_name, config):
    """Instantiate the Task for a YAML ``task`` value."""
    return TASKS[task_family(task_name)](config)


class Task(abc.ABC):
    """A task family: reader, label set, model head, metrics.

    ``config`` is the fine-tuning config object (attribute access to the YAML keys).
    """

    name = None
    # "classification" | "regression" | "token_classification" | "span_extraction"
    kind = None
    # The key of compute_metrics' result that selects the best checkpoint and that NNI maximises.
    primary_metric = None

    def __init__(self, config):
        self.config = config
        # Facts about each split's inputs worth a line in results.json (e.g. NER's truncation).
        self.split_notes = {}

    def labels(self):
        """The label set in id order, or None for regression and span extraction."""
        return None

    @abc.abstractmethod
    def read_examples(self, path, split):
        """Parse one data file in the task's canonical layout into a list of examples.

        ``split`` is "train", "dev" or "test". A malformed line or a label outside
        ``labels()`` raises UserInputError naming ``path`` and the line number.
        """

    @abc.abstractmethod
    def build_features(self, examples, tokenizer, max_seq_len, split):
        """Tokenize examples into a list of dicts of python lists, unpadded
        (``input_ids``, ``attention_mask``, ``token_type_ids`` and the task's label keys,
        e.g. ``labels`` or ``start_positions``/``end_positions``). Features may carry extra
        non-tensor keys (prefixed ``_``) that postprocess needs; the collator drops them.
        ``tokenizer`` is a transformers fast tokenizer; text has already been through
        ``finetune.text.prepare_text`` (mecab pre-split when the vocab needs it) if the
        task calls it.
        """

    @abc.abstractmethod
    def build_model(self, model_name_or_path, **config_kwargs):
        """A transformers model with this task's head (``AutoModelFor...``), loaded offline."""

    @abc.abstractmethod
    def postprocess(self, outputs, features, examples):
        """Turn the stacked raw model outputs of one split into predictions, one per example.

        ``outputs`` is a dict of numpy arrays concatenated over the split in feature order
        (``logits``; or ``start_logits``/``end_logits``), padded along the sequence axis
        to a common length with zeros.
        """

    @abc.abstractmethod
    def compute_metrics(self, predictions, examples):
        """Metrics dict for predictions against the examples' gold labels, e.g.
        {"accuracy": 90.1} (percentages where the seeds report percentages)."""

    def prediction_records(self, predictions, examples):
        """Rows for the test-prediction file: one dict per example."""
        return [{"index": i, "prediction": p} for i, p in enumerate(predictions)]

    def prediction_files(self, predictions, examples):
        """Extra files in a task's official format, ``{file name: JSON object}`` (e.g. KorQuAD's
        ``predictions.json``); written beside ``predictions_<split>.jsonl``."""
        return {}
