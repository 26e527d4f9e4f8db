"""Predictions of a fine-tuned model on new, unlabelled text, through PyTorch or onnxruntime.

A fine-tuned directory (``ckpt_dir/<task>/best_model/`` or a ``checkpoint-N/``) says what it
is: ``config.json`` names the head (``architectures``) and the labels (``id2label``), and
``finetune_config.json`` the task, ``max_seq_len`` and the task's own keys (``doc_stride``,
``ner_format``, ...). Texts become features through the same ``Task.build_features`` the
trainer used, so tokenization — mecab pre-splitting included, when the directory's
``tokenizer_config.json`` says ``mecab_wordpiece`` — is training's, byte for byte. Features
are batched longest first with dynamic padding (``finetune.data``) and the outputs put back
in input order.

Heads and what a prediction holds:
- sequence classification: ``label`` and ``probabilities`` (softmax over the labels);
- regression (KorSTS): ``score``;
- token classification (NER): ``entities`` with ``type``, ``text`` and character offsets
  ``start``/``end`` into the input, from the BIO tags;
- question answering (KorQuAD): ``answer`` (chosen by the task's own post-processing, as the
  trainer scores it), its ``start``/``end`` in the context and ``score`` (its probability among
  the n-best candidates where the task reports one, else start x end probability in its
  window); long contexts are read in windows of ``doc_stride`` as in training;
- dependency parsing (KLUE-DP): ``words``, each with its ``index`` (from 1), ``word``, ``head``
  (0 = root) and ``relation``, words split at whitespace as KLUE's eojeols.
"""
import dataclasses
import logging
import os
import re

import numpy as np

from finetune.onnx_runtime import OnnxRuntime
from util.errors import UserInputError
from util.files import read_json

logger = logging.getLogger(__name__)

FINETUNE_CONFIG = "finetune_config.json"
HEAD_KINDS = {"ForSequenceClassification": "classification", "ForTokenClassification": "token_classification",
              "ForQuestionAnswering": "span_extraction", "ForDependencyParsing": "dependency_parsing"}


@dataclasses.dataclass
class ModelInfo:
    """What a fine-tuned directory says about itself."""
    model_dir: str
    kind: str  # classification | regression | token_classification | span_extraction | dependency_parsing
    family: object  # task family (nsmc, korsts, ...) from finetune_config.json, or None
    labels: list
    settings: object  # a finetune.config.FinetuneConfig rebuilt from finetune_config.json
    positions: object = None  # config.json's max_position_embeddings: the longest input the model takes

    @property
    def pair_input(self):
        """True: pairs required; False: single texts; None: unknown (a TAB makes a pair).

        Decided by the task's own columns as the run configured them (Hate Speech reads the
        comment alone or title + comment, by its ``hate_speech_input`` key)."""
        if self.kind == "regression":
            return True
        if self.kind != "classification" or self.family is None:
            return None
        from finetune.tasks import get_task

        try:
            columns = get_task(self.settings.task, self.settings).columns
        except (UserInputError, AttributeError):
            return None
        return columns[1] is not None


def describe_model_dir(model_dir):
    """ModelInfo of a fine-tuned directory, or a one-line UserInputError saying why it is not one."""
    from finetune.config import DEFAULTS, FinetuneConfig

    if not os.path.isdir(model_dir):
        raise UserInputError(f"model directory not found: {model_dir}")
    config_path = os.path.join(model_dir, "config.json")
    if not os.path.isfile(config_path):
        raise UserInputError(f"{model_dir}: no config.json, so not a fine-tuned model directory "
                             "(expected ckpt_dir/<task>/best_model from run_finetune.py)")
    config = read_json(config_path, "model config")
    architecture = (config.get("architectures") or ["?"])[0]
    kind = next((k for suffix, k in HEAD_KINDS.items() if architecture.endswith(suffix)), None)
    if kind is None:
        raise UserInputError(f"{model_dir}: {architecture} is not a fine-tuned model (no task head); "
                             "fine-tune it with run_finetune.py and pass its best_model/ directory")
    if kind == "classification" and (config.get("problem_type") == "regression" or config.get("num_labels") == 1
                                     or len(config.get("id2label") or {}) == 1):
        kind = "regression"
    labels = [config["id2label"][str(i)] for i in range(len(config.get("id2label") or {}))]
    values = dict(DEFAULTS)
    settings_path = os.path.join(model_dir, FINETUNE_CONFIG)
    if os.path.isfile(settings_path):
        values.update(read_json(settings_path, "fine-tuning config"))
    else:  # a directory saved without our config: casing as its tokenizer recorded it
        from util.tokenization import read_tokenizer_config

        values["do_lower_case"] = bool(read_tokenizer_config(model_dir).get("do_lower_case", False))
    # The tokenizer (and its tokenizer_type, which decides mecab) is the one saved here.
    values["model_name_or_path"] = model_dir
    family = None
    if values.get("task"):
        from finetune.tasks import task_family

        try:
            family = task_family(values["task"])
        except UserInputError:
            family = None
    return ModelInfo(model_dir, kind, family, labels, FinetuneConfig(values, source=settings_path),
                     config.get("max_position_embeddings"))


# -- runtimes ---------------------------------------------------------------------------------

class TorchRuntime:
    """The directory's model in PyTorch eager mode, inference only."""

    def __init__(self, model_dir, threads=None):
        import inspect

        import torch

        from convert.onnx_export import load_finetuned, output_names

        if threads:
            torch.set_num_threads(threads)
        self.model = load_finetuned(model_dir)
        self.names = output_names(self.model)
        self.inputs = set(inspect.signature(self.model.forward).parameters)

    def __call__(self, batch):
        import torch

        with torch.inference_mode():
            out = self.model(**{k: v for k, v in batch.items() if k in self.inputs})
        return {name: out[name].float().numpy() for name in self.names}


def run_features(runtime, features, pad_token_id, batch_size, per_token):
    """Raw outputs for every feature, in feature order: a list of dicts of numpy rows.

    Batches are longest first and padded to their own longest feature; with ``per_token``
    each row's sequence outputs are cut back to its feature's length.
    """
    from finetune.data import Collator, eval_batches

    collate = Collator(pad_token_id)
    rows = [None] * len(features)
    for indices in eval_batches(features, batch_size):
        outputs = runtime(collate([features[i] for i in indices]))
        for j, i in enumerate(indices):
            length = len(features[i]["input_ids"])
            rows[i] = {k: v[j][:length] if per_token else v[j] for k, v in outputs.items()}
    return rows


# -- the predictor ------------------------------------------------------------------------------

def _softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Predictor:
    """Loads a fine-tuned directory once; ``predict(items)`` gives one dict per item.

    ``items`` are strings (single sentences, NER), ``(text_a, text_b)`` pairs, or
    ``{"context", "question"}`` dicts (QA), as ``finetune.predict_cli`` parses them.
    """

    def __init__(self, model_dir, onnx_path=None, threads=None, batch_size=32, max_seq_len=None):
        from finetune.models import load_tokenizer

        self.info = describe_model_dir(model_dir)
        settings = self.info.settings
        positions = self.info.positions
        if max_seq_len and positions and max_seq_len > positions:
            # Refused before loading: past the position embeddings every long line would fail.
            raise UserInputError(f"--max_seq_len {max_seq_len} exceeds the model's {positions} positions "
                                 f"(max_position_embeddings in {os.path.join(model_dir, 'config.json')}); "
                                 f"pass {positions} or less")
        self.tokenizer = load_tokenizer(settings, model_dir)
        self.max_seq_len = int(max_seq_len or settings.max_seq_len or 128)
        self.batch_size = batch_size
        self.task = self._task()
        self.runtime = OnnxRuntime(onnx_path, self.info, threads) if onnx_path else TorchRuntime(model_dir, threads)

    def _task(self):
        info = self.info
        if info.kind in ("classification", "regression"):
            from finetune.tasks.sequence_classification import SequenceClassificationTask

            task = SequenceClassificationTask(info.settings)
            task.kind, task.label_list = info.kind, tuple(info.labels)
            return task
        if info.kind == "token_classification":
            from finetune.tasks.ner import NerTask
            from finetune.tasks.ner_readers import KLUE_LABELS, NAVER_LABELS

            # The data files named in the saved config are not here: the label set says the layout.
            formats = {tuple(KLUE_LABELS): "klue", tuple(NAVER_LABELS): "naver"}
            if tuple(info.labels) not in formats:
                raise UserInputError(f"{info.model_dir}: its NER labels are neither Naver's nor KLUE's tag set")
            info.settings.ner_format = formats[tuple(info.labels)]
            return NerTask(info.settings)
        if info.kind == "dependency_parsing":
            from finetune.tasks.klue_dp import KlueDpTask

            return KlueDpTask(info.settings)
        from finetune.tasks.korquad import KorquadTask

        return KorquadTask(info.settings)

    def predict(self, items):
        """One prediction dict per item, in order (each may carry ``"warning"``)."""
        if not items:
            return []
        kind = self.info.kind
        if kind in ("classification", "regression"):
            return self._predict_sequences(items)
        if kind == "token_classification":
            return self._predict_entities(items)
        if kind == "dependency_parsing":
            from finetune.dp_inference import predict_parses

            return predict_parses(self.task, self.tokenizer, self.max_seq_len, self._run, items)
        return self._predict_answers(items)

    def _run(self, features):
        per_token = self.info.kind in ("token_classification", "span_extraction", "dependency_parsing")
        return run_features(self.runtime, features, self.tokenizer.pad_token_id, self.batch_size, per_token)

    # -- classification and regression ----------------------------------------------------
    def _predict_sequences(self, items):
        from finetune.tasks.sequence_classification import Example

        task = self.task
        dummy = 0.0 if task.kind == "regression" else task.label_list[0]
        pairs = [item if isinstance(item, tuple) else (item, None) for item in items]
        results = [None] * len(items)
        # A batch is all pairs or all single texts: the tokenizer takes one or the other.
        for want_pair in (False, True):
            chosen = [i for i, (_, b) in enumerate(pairs) if (b is not None) == want_pair]
            if not chosen:
                continue
            examples = [Example(str(i), pairs[i][0], pairs[i][1], dummy, i) for i in chosen]
            features = task.build_features(examples, self.tokenizer, self.max_seq_len, "predict")
            truncated = self._truncated(examples, features)
            for i, row, cut in zip(chosen, self._run(features), truncated):
                logits = np.asarray(row["logits"], dtype=np.float64).reshape(-1)
                if task.kind == "regression":
                    result = {"score": round(float(logits[0]), 6)}
                else:
                    probabilities = _softmax(logits)
                    result = {"label": task.label_list[int(probabilities.argmax())],
                              "probabilities": {label: round(float(p), 6)
                                                for label, p in zip(task.label_list, probabilities)}}
                if cut:
                    result["warning"] = cut
                results[i] = result
        return results

    def _truncated(self, examples, features):
        """A warning for each example cut at max_seq_len, or None."""
        from finetune.text import prepare_texts

        full = [i for i, f in enumerate(features) if len(f["input_ids"]) >= self.max_seq_len]
        warnings = [None] * len(features)
        if not full:
            return warnings
        settings = self.info.settings
        texts_a = prepare_texts([examples[i].text_a for i in full], settings)
        texts_b = (prepare_texts([examples[i].text_b for i in full], settings)
                   if examples[full[0]].text_b is not None else None)
        lengths = [len(ids) for ids in self.tokenizer(texts_a, texts_b)["input_ids"]]
        for i, n in zip(full, lengths):
            if n > self.max_seq_len:
                warnings[i] = f"{n} tokens, truncated to max_seq_len {self.max_seq_len}"
        return warnings

    # -- NER --------------------------------------------------------------------------------
    def _predict_entities(self, texts):
        from finetune import ner_metrics
        from finetune.tasks.ner_readers import NerExample

        char_level = self.task.data_format() == "klue"
        examples, spans = [], []
        for i, text in enumerate(texts):
            words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
            # One unit per word (Naver), or per non-space character (KLUE): its [start, end) in text.
            units = [(c, c + 1) for s, e in words for c in range(s, e)] if char_level else words
            examples.append(NerExample(str(i), [text[s:e] for s, e in words], ["O"] * len(units), char_level, i))
            spans.append(units)
        features = self.task.build_features(examples, self.tokenizer, self.max_seq_len, "predict")
        rows = self._run(features)
        width = max(len(r["logits"]) for r in rows)
        logits = np.zeros((len(rows), width, len(self.info.labels)), dtype=np.float32)
        for k, row in enumerate(rows):
            logits[k, :len(row["logits"])] = row["logits"]
        tags = self.task.postprocess({"logits": logits}, features, examples)
        results = []
        for text, units, feature, sequence in zip(texts, spans, features, tags):
            entities = []
            for kind, first, last in ner_metrics.entities(sequence):
                start, end = units[first][0], units[last][1]
                entities.append({"type": kind, "text": text[start:end], "start": start, "end": end})
            result = {"entities": entities}
            covered = max((u[1] for u in feature["_units"] if u is not None), default=0)
            if covered < len(units):
                result["warning"] = (f"longer than max_seq_len {self.max_seq_len} tokens: the last "
                                     f"{len(units) - covered} {'characters' if char_level else 'words'} "
                                     "were not tagged")
            results.append(result)
        return results

    # -- question answering ---------------------------------------------------------------
    def _predict_answers(self, items):
        from finetune.tasks.korquad import QaExample

        examples = [QaExample(str(i), item["question"], item["context"], [{"text": "", "answer_start": 0}])
                    for i, item in enumerate(items)]
        previous = logging.getLogger("finetune.tasks.korquad").level
        logging.getLogger("finetune.tasks.korquad").setLevel(logging.WARNING)  # no gold: no ceiling to log
        try:
            features = self.task.build_features(examples, self.tokenizer, self.max_seq_len, "predict")
        finally:
            logging.getLogger("finetune.tasks.korquad").setLevel(previous)
        rows = self._run(features)
        width = max(len(r["start_logits"]) for r in rows)
        stacked = {}
        for name in ("start_logits", "end_logits"):
            stacked[name] = np.zeros((len(rows), width), dtype=np.float32)
            for k, row in enumerate(rows):
                stacked[name][k, :len(row[name])] = row[name]
        # The task's own post-processing picks the answer, exactly as the trainer scored it.
        answers = self.task.postprocess(stacked, features, examples)
        spans = self._answer_spans(features, rows, examples, answers)
        results = []
        for example, answer, span in zip(examples, answers, spans):
            nbest = getattr(answer, "nbest", None)
            if span is None:
                results.append({"answer": "", "start": None, "end": None, "score": 0.0,
                                "warning": "no answer span found in the context"})
                continue
            start, end, probability = span
            if nbest:  # softmax over the n-best candidates, as the trainer's nbest_predictions.json
                probability = nbest[0].get("probability", probability)
            results.append({"answer": example.context[start:end], "start": start, "end": end,
                            "score": round(float(probability), 6)})
        return results

    def _answer_spans(self, features, rows, examples, answers):
        """(start, end, probability) in the context of each chosen answer: the best-scoring
        candidate span whose text is the answer (start x end probability in its window)."""
        n_best, max_answer = self.task._setting("n_best_size"), self.task._setting("max_answer_length")
        best = [None] * len(examples)
        for feature, row in zip(features, rows):
            start_logits, end_logits = row["start_logits"], row["end_logits"]
            start_p, end_p = _softmax(start_logits.astype(np.float64)), _softmax(end_logits.astype(np.float64))
            offsets, index = feature["_offsets"], feature["_example_index"]
            context, answer = examples[index].context, str(answers[index])
            for s in np.argsort(start_logits)[::-1][:n_best]:
                if offsets[s] is None:
                    continue
                for e in np.argsort(end_logits)[::-1][:n_best]:
                    if offsets[e] is None or e < s or e - s + 1 > max_answer:
                        continue
                    if context[offsets[s][0]:offsets[e][1]] != answer:
                        continue
                    total = float(start_logits[s] + end_logits[e])
                    if best[index] is None or total > best[index][0]:
                        best[index] = (total, offsets[s][0], offsets[e][1], float(start_p[s] * end_p[e]))
        return [None if b is None else b[1:] for b in best]
