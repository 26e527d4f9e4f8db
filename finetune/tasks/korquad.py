"""KorQuAD 1.0 (SQuAD v1.1-style JSON): extract the answer span from a context.

Contexts longer than a window are read in overlapping windows, as in BERT's and
KoELECTRA's ``run_squad``: ``doc_stride`` is the step in tokens between window starts
(so windows overlap by ``window - doc_stride`` tokens), the question is cut to
``max_query_length`` tokens, and a window that does not contain the whole answer is
trained to point at [CLS]. The prediction for a question is the highest
``start + end`` logit sum over every window, among the ``n_best_size`` best starts and
ends, spans of at most ``max_answer_length`` tokens inside the context; its text is cut
from the original context through the tokenizer's character offsets.

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
        best = [(-np.inf, "") for _ in examples]
        for f, feature in enumerate(features):
            offsets = feature["_offsets"]
            starts_ = start_logits[f][:len(offsets)]
            ends_ = end_logits[f][:len(offsets)]
            context = examples[feature["_example_index"]].context
            top_starts = np.argsort(starts_)[::-1][:n_best]
            top_ends = np.argsort(ends_)[::-1][:n_best]
            for s in top_starts:
                if offsets[s] is None:
                    continue
                for e in top_ends:
                    if offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                        continue
                    score = starts_[s] + ends_[e]
                    if score > best[feature["_example_index"]][0]:
                        best[feature["_example_index"]] = (score, context[offsets[s][0]:offsets[e][1]])
        return [text for _, text in best]

    def compute_metrics(self, predictions, examples):
        return korquad_metrics.evaluate([[a["text"] for a in ex.answers] for ex in examples], predictions)

    def prediction_records(self, predictions, examples):
        # One {question id: answer} per line; merged, they are the official evaluator's input.
        return [{ex.qid: text} for ex, text in zip(examples, predictions)]
