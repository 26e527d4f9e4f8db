"""Predictions of a fine-tuned model on new, unlabelled text, through PyTorch or onnxruntime.

A fine-tuned directory (``ckpt_dir/<task>/best_model/`` or a ``checkpoint-N/``) says what it
is: ``config.json`` names the head (``architectures``) and the labels (``id2label``), and
``finetune_config.json`` the task, ``max_seq_len`` and the task's own keys (``doc_stride``,
``ner_format``, ...). Texts become features through the same ``Task.build_features`` the
trainer used, so tokenization — mecab pre-splitting included, when the directory's
``tokenizer_config.json`` says ``mecab_wordpiece`` — is training's, byte for byte. Items are
checked and normalised first (finetune/inputs.py). Features are batched longest first with
dynamic padding (finetune/runtimes.py) and the outputs put back in input order. With an ONNX
file the tokenizer is util.rust_tokenizer's, and neither torch nor transformers is imported.

Heads and what a prediction holds:
- sequence classification: ``label`` and ``probabilities`` (softmax over the labels);
- regression (KorSTS): ``score``;
- token classification (NER): ``entities`` with ``type``, ``text`` and character offsets
  ``start``/``end`` into the (normalised) input, from the BIO tags;
- question answering (KorQuAD): ``answer`` (chosen by the task's own post-processing, as the
  trainer scores it), its ``start``/``end`` in the context and ``score`` (its probability among
  the n-best candidates where the task reports one, else start x end probability in its
  window); long contexts are read in windows of ``doc_stride`` as in training;
- dependency parsing (KLUE-DP): ``words``, each with its ``index`` (from 1), ``word``, ``head``
  (0 = root) and ``relation``, words split at whitespace as KLUE's eojeols.
"""
import logging
import os
import re

import numpy as np

from finetune.inputs import BadInput, check_item
from finetune.model_info import FINETUNE_CONFIG, HEAD_KINDS, ModelInfo, describe_model_dir  # noqa: F401
from finetune.runtimes import run_features
from util.errors import UserInputError

logger = logging.getLogger(__name__)


# -- the predictor ------------------------------------------------------------------------------

def _softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Predictor:
    """Loads a fine-tuned directory once; ``predict(items)`` gives one dict per item.

    ``items`` are strings (single sentences, NER, KLUE-DP), ``(text_a, text_b)`` pairs, or
    ``{"context", "question"}`` dicts (QA). Each is checked and normalised first
    (finetune.inputs.check_item: NFC, no invisible characters, not empty, the model's shape),
    so predict.py and the server, which call this, refuse what it refuses.

    ``onnx_path`` runs an exported ONNX file with onnxruntime instead of PyTorch; ``device`` is
    cpu (default), cuda or cuda:N, or for ONNX an onnxruntime execution provider's name.
    """

    def __init__(self, model_dir, onnx_path=None, threads=None, batch_size=32, max_seq_len=None, device=None):
        self.info = describe_model_dir(model_dir)
        settings = self.info.settings
        positions = self.info.positions
        if max_seq_len and positions and max_seq_len > positions:
            # Refused before loading: past the position embeddings every long line would fail.
            raise UserInputError(f"--max_seq_len {max_seq_len} exceeds the model's {positions} positions "
                                 f"(max_position_embeddings in {os.path.join(model_dir, 'config.json')}); "
                                 f"pass {positions} or less")
        self.max_seq_len = int(max_seq_len or settings.max_seq_len or 128)
        self.batch_size = batch_size
        if onnx_path:
            from finetune.onnx_runtime import OnnxRuntime

            self.runtime = OnnxRuntime(onnx_path, self.info, threads, device)
        else:
            from finetune.runtimes import TorchRuntime

            self.runtime = TorchRuntime(model_dir, threads, device)
        if onnx_path:  # the Rust tokenizer alone: this path imports neither torch nor transformers
            from util.rust_tokenizer import load_rust_tokenizer

            self.tokenizer = load_rust_tokenizer(model_dir, do_lower_case=settings.do_lower_case)
        else:
            from finetune.models import load_tokenizer

            self.tokenizer = load_tokenizer(settings, model_dir)
        self.task = self._task()

    def check(self, item):
        """``item`` as the model reads it (normalised), or finetune.inputs.BadInput saying why not."""
        return check_item(item, self.info)

    def predict(self, items, errors="raise"):
        """One prediction dict per item, in order (each may carry ``"warning"``).

        An item that cannot be predicted raises a UserInputError naming it (``items[3]: text is
        empty``); with ``errors="record"`` it becomes ``{"error": ...}`` and the others are predicted.
        """
        checked, failed = [], {}
        for i, item in enumerate(items):
            try:
                checked.append(self.check(item))
            except BadInput as e:
                if errors != "record":
                    raise UserInputError(f"items[{i}]: {e}") from None
                failed[i] = {"error": str(e)}
        predictions = iter(self._predict_checked(checked) if checked else [])
        return [failed[i] if i in failed else next(predictions) for i in range(len(items))]

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

    def _predict_checked(self, items):
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
