"""KorQuAD 1.0 (SQuAD v1.1-style JSON): extract the answer span from a context.

Contexts longer than a window are read in overlapping windows, as in BERT's and
KoELECTRA's ``run_squad``: ``doc_stride`` is the step in tokens between window starts
(so windows overlap by ``window - doc_stride`` tokens), the question is cut to
``max_query_length`` tokens, and a window that does not contain the whole answer is
trained to point at [CLS]. The prediction for a question is the highest
``start + end`` logit sum over every window, among the ``n_best_size`` best starts and
ends, spans of at most ``max_answer_length`` tokens inside the context; its text is cut
from the original context through the tokenizer's character offsets.

Post-processing is the standard SQuAD one that KoELECTRA calls (transformers'
``compute_predictions_logits``): a start is only taken from the window where its token has
the most context on both sides (BERT's max-context rule), candidates are ranked by start +
end logit, duplicate texts dropped, and the ``n_best_size`` best become the n-best list
with softmax probabilities; ``predictions.json`` and ``nbest_predictions.json`` are written
in the official format (``{id: answer}``), which KorQuAD's evaluate-v1.0.py reads as is.

YAML keys (with KoELECTRA's defaults): ``doc_stride`` 128, ``max_query_length`` 64,
``max_answer_length`` 30, ``n_best_size`` 20.
"""
import collections
import dataclasses
import logging

import numpy as np

from finetune import korquad_metrics
from finetune.tasks.base import Task, register
from finetune.tasks.presplit import Presplitter
from util.errors import UserInputError
from util.files import read_json

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class QaExample:
    qid: str
    question: str
    context: str
    # [{"text", "answer_start"}, ...]; the first one is trained on.
    answers: list
    title: str = ""


def _require(value, kind, path, where):
    if not isinstance(value, kind):
        raise UserInputError(f"{path}: {where} must be a {kind.__name__}, got {type(value).__name__}")
    return value


def read_squad_json(path, split):
    """Every question of a SQuAD v1.1 / KorQuAD 1.0 file, checked against its context."""
    doc = read_json(path, "KorQuAD file")
    if not isinstance(doc, dict) or "data" not in doc:
        raise UserInputError(f"{path}: expected SQuAD-style JSON with a top-level 'data' list")
    examples = []
    for a, article in enumerate(_require(doc["data"], list, path, "data")):
        title = article.get("title", "") if isinstance(article, dict) else ""
        where_article = f"data[{a}]"
        paragraphs = _require(article, dict, path, where_article).get("paragraphs")
        for p, paragraph in enumerate(_require(paragraphs, list, path, f"{where_article}.paragraphs")):
            where = f"{where_article}.paragraphs[{p}]"
            _require(paragraph, dict, path, where)
            context = _require(paragraph.get("context"), str, path, f"{where}.context")
            for q, qa in enumerate(_require(paragraph.get("qas"), list, path, f"{where}.qas")):
                where_q = f"{where}.qas[{q}]"
                _require(qa, dict, path, where_q)
                qid = str(qa.get("id", where_q))
                question = _require(qa.get("question"), str, path, f"{where_q}.question")
                answers = _require(qa.get("answers", []), list, path, f"{where_q}.answers")
                if not answers:
                    raise UserInputError(f"{path}: question {qid}: no answers (KorQuAD 1.0 has no unanswerable questions)")
                for answer in answers:
                    text = answer.get("text") if isinstance(answer, dict) else None
                    start = answer.get("answer_start") if isinstance(answer, dict) else None
                    if not isinstance(text, str) or not isinstance(start, int):
                        raise UserInputError(f"{path}: question {qid}: each answer needs 'text' and an integer 'answer_start'")
                    if context[start:start + len(text)] != text:
                        raise UserInputError(
                            f"{path}: question {qid}: answer {text!r} is not at answer_start {start} of its context"
                        )
                examples.append(QaExample(qid, question, context, answers, title))
    if not examples:
        raise UserInputError(f"{path}: no questions")
    return examples


def _answer_tokens(offsets, start_char, end_char):
    """First and last token of the answer [start_char, end_char) in a window, or None
    when the window does not hold the whole answer. ``offsets``: None outside the context."""
    context = [k for k, o in enumerate(offsets) if o is not None]
    if not context:
        return None
    first, last = context[0], context[-1]
    if offsets[first][0] > start_char or offsets[last][1] < end_char:
        return None
    start = first
    while start + 1 <= last and offsets[start + 1][0] <= start_char:
        start += 1
    end = last
    while end - 1 >= start and offsets[end - 1][1] >= end_char:
        end -= 1
    return start, end


@register("korquad", "squad")
class KorquadTask(Task):
    kind = "span_extraction"
    primary_metric = "f1"
    config_defaults = {"doc_stride": 128, "max_query_length": 64, "max_answer_length": 30,
                       "n_best_size": 20}

    def _setting(self, key):
        value = getattr(self.config, key, None)
        value = self.config_defaults[key] if value is None else int(value)
        if value <= 0:
            where = self.config.where(key) if hasattr(self.config, "where") else key
            raise UserInputError(f"{where}: {key} must be positive, got {value}")
        return value

    def read_examples(self, path, split):
        return read_squad_json(path, split)

    def build_features(self, examples, tokenizer, max_seq_len, split):
        doc_stride = self._setting("doc_stride")
        max_query_length = self._setting("max_query_length")
        presplit = Presplitter.for_run(self.config, tokenizer)
        special = tokenizer.num_special_tokens_to_add(pair=True)

        contexts = {}  # a paragraph's context is shared by its questions: split it once
        for ex in examples:
            if ex.context not in contexts:
                contexts[ex.context] = presplit.text(ex.context)
        questions, q_lengths = self._truncated_questions(
            [presplit.text(ex.question)[0] for ex in examples], tokenizer, max_query_length)

        # Windows overlap by (window - doc_stride) tokens; that depends on the question's
        # length, so questions of one length are tokenized together.
        by_length = collections.defaultdict(list)
        for i, n in enumerate(q_lengths):
            by_length[n].append(i)
        features, warned = [], False
        for q_len, indices in by_length.items():
            window = max_seq_len - q_len - special
            if window < 2:
                raise UserInputError(
                    f"max_seq_len {max_seq_len} leaves no room for the context after a "
                    f"{q_len}-token question; raise max_seq_len or lower max_query_length"
                )
            overlap = min(max(window - doc_stride, 0), window - 1)
            if overlap == 0 and not warned:
                warned = True
                logger.warning("%s: doc_stride %d is not smaller than the %d-token context window, so "
                               "windows do not overlap and answers across their edges are lost",
                               split, doc_stride, window)
            enc = tokenizer([questions[i] for i in indices],
                            [contexts[examples[i].context][0] for i in indices],
                            truncation="only_second", max_length=max_seq_len, stride=overlap,
                            return_overflowing_tokens=True, return_offsets_mapping=True)
            for w, sample in enumerate(enc["overflow_to_sample_mapping"]):
                index = indices[sample]
                features.append(self._window_feature(enc, w, index, examples[index],
                                                     contexts[examples[index].context][1]))
        features.sort(key=lambda f: (f["_example_index"], f["_window"]))
        _mark_max_context(features)
        self._log_ceiling(features, examples, split)
        return features

    def _log_ceiling(self, features, examples, split):
        """Log the EM/F1 of the gold token spans: what a perfect model could score.

        A sub-token that runs past the answer ("임수경을" for the answer "임수경") caps
        exact match; a mecab vocab splits particles off and lifts the cap.
        """
        spans = {}
        for f in features:
            i = f["_example_index"]
            if i not in spans and f["start_positions"] != 0:
                offsets = f["_offsets"]
                spans[i] = examples[i].context[offsets[f["start_positions"]][0]:offsets[f["end_positions"]][1]]
        ceiling = self.compute_metrics([spans.get(i, "") for i in range(len(examples))], examples)
        self.tokenization_ceiling = ceiling
        logger.info("%s: gold token spans score EM %.2f / F1 %.2f (the tokenization's ceiling)",
                    split, ceiling["exact_match"], ceiling["f1"])

    @staticmethod
    def _truncated_questions(questions, tokenizer, max_query_length):
        """Questions cut after their ``max_query_length``-th token, and their token counts."""
        enc = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
        cut, lengths = [], []
        for question, ids, offsets in zip(questions, enc["input_ids"], enc["offset_mapping"]):
            if len(ids) > max_query_length:
                question = question[:offsets[max_query_length - 1][1]]
            cut.append(question)
            lengths.append(min(len(ids), max_query_length))
        return cut, lengths

    @staticmethod
    def _window_feature(enc, w, index, ex, char_map):
        sequence_ids = enc.sequence_ids(w)
        # Offsets into the original context (through the mecab map when text was split).
        offsets = [
            (char_map[s], char_map[e - 1] + 1) if seq == 1 and e > s else None
            for seq, (s, e) in zip(sequence_ids, enc["offset_mapping"][w])
        ]
        cls_index = 0  # [CLS] opens every window of a BERT-style encoder
        answer = ex.answers[0]
        span = _answer_tokens(offsets, answer["answer_start"], answer["answer_start"] + len(answer["text"]))
        start, end = span if span is not None else (cls_index, cls_index)
        feature = {
            "input_ids": enc["input_ids"][w],
            "attention_mask": enc["attention_mask"][w],
            "start_positions": start,
            "end_positions": end,
            "_example_index": index,
            "_window": w,
            "_offsets": offsets,
        }
        if "token_type_ids" in enc:
            feature["token_type_ids"] = enc["token_type_ids"][w]
        return feature

    def build_model(self, model_name_or_path, **config_kwargs):
        from transformers import AutoModelForQuestionAnswering

        return AutoModelForQuestionAnswering.from_pretrained(
            model_name_or_path, local_files_only=True, **config_kwargs
        )

    def postprocess(self, outputs, features, examples):
        n_best = self._setting("n_best_size")
        max_answer_length = self._setting("max_answer_length")
        start_logits, end_logits = np.asarray(outputs["start_logits"]), np.asarray(outputs["end_logits"])
        candidates = [[] for _ in examples]
        for f, feature in enumerate(features):
            offsets, max_context = feature["_offsets"], feature["_max_context"]
            starts_, ends_ = start_logits[f][:len(offsets)], end_logits[f][:len(offsets)]
            for s in np.argsort(starts_)[::-1][:n_best]:
                if offsets[s] is None or not max_context[s]:
                    continue
                for e in np.argsort(ends_)[::-1][:n_best]:
                    if offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                        continue
                    candidates[feature["_example_index"]].append(
                        (float(starts_[s]), float(ends_[e]), offsets[s][0], offsets[e][1]))
        return [_best_answers(c, ex.context, n_best) for c, ex in zip(candidates, examples)]

    def compute_metrics(self, predictions, examples):
        return korquad_metrics.evaluate([[a["text"] for a in ex.answers] for ex in examples], predictions)

    def prediction_records(self, predictions, examples):
        # One {question id: answer} per line; predictions.json holds them merged.
        return [{ex.qid: str(text)} for ex, text in zip(examples, predictions)]

    def prediction_files(self, predictions, examples):
        return {"predictions.json": {ex.qid: str(p) for ex, p in zip(examples, predictions)},
                "nbest_predictions.json": {ex.qid: p.nbest for ex, p in zip(examples, predictions)}}


class Answer(str):
    """A predicted answer text that also carries its n-best list (for nbest_predictions.json)."""

    nbest = ()


def _best_answers(candidates, context, n_best):
    """The n-best distinct texts by start + end logit, with softmax probabilities, as
    transformers' compute_predictions_logits; "empty" when no span qualifies."""
    nbest, seen = [], set()
    for start_logit, end_logit, first, last in sorted(candidates, key=lambda c: c[0] + c[1], reverse=True):
        if len(nbest) >= n_best:
            break
        text = context[first:last]
        if text in seen:
            continue
        seen.add(text)
        nbest.append({"text": text, "start_logit": start_logit, "end_logit": end_logit})
    if not nbest:
        nbest = [{"text": "empty", "start_logit": 0.0, "end_logit": 0.0}]
    totals = np.array([n["start_logit"] + n["end_logit"] for n in nbest], dtype=np.float64)
    probabilities = np.exp(totals - totals.max())
    probabilities /= probabilities.sum()
    for entry, probability in zip(nbest, probabilities):
        entry["probability"] = float(probability)
    answer = Answer(nbest[0]["text"])
    answer.nbest = nbest
    return answer


def _mark_max_context(features):
    """``_max_context``: per token, whether this window gives it the most context (BERT's
    _check_is_max_context: min(left, right) + 0.01 * window length, the first window winning
    ties); None outside the context. Features must be sorted by example, then window."""
    by_example = collections.defaultdict(list)
    for feature in features:
        by_example[feature["_example_index"]].append(feature)
    for windows in by_example.values():
        # A context token is known by its character offsets; windows share tokens they overlap on.
        positions = sorted({o for f in windows for o in f["_offsets"] if o is not None})
        index = {o: i for i, o in enumerate(positions)}
        spans = []
        for f in windows:
            inside = [index[o] for o in f["_offsets"] if o is not None]
            spans.append((inside[0], len(inside)) if inside else (0, 0))
        for f in windows:
            marks = []
            for o in f["_offsets"]:
                if o is None:
                    marks.append(None)
                    continue
                p, best, best_window = index[o], None, None
                for w, (start, length) in enumerate(spans):
                    if not start <= p < start + length:
                        continue
                    score = min(p - start, start + length - 1 - p) + 0.01 * length
                    if best is None or score > best:
                        best, best_window = score, w
                marks.append(windows[best_window] is f)
            f["_max_context"] = marks
