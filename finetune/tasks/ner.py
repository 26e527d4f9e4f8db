"""Named-entity recognition: Naver NER (KoELECTRA's tsv or the 2018 challenge files) and KLUE-NER's layout.

The ``klue-ner`` task family (finetune/tasks/klue_ner.py) is this task with KLUE's own metrics.

Two granularities share one model head:
- Naver NER tags whole words (eojeols). The first sub-token of each word carries the
  word's tag; the word's other sub-tokens are ignored in the loss (-100), as in KoELECTRA.
- KLUE-NER tags characters, and its entities often end inside a word ("<한국:LC>을"), so
  word-level tags would score different entities than the gold ones. Here every
  sub-token is labelled with its first character's tag and a predicted tag is spread
  back over the characters its token covers (``B-X`` then ``I-X``). Scoring runs on the
  non-space characters: KLUE tags a space inside an entity ``I-X`` and one outside
  ``O``, so dropping spaces keeps every entity's start and end, and the score equals
  character-level entity F1.
Words or characters cut off by ``max_seq_len`` are dropped from scoring, gold and prediction
alike, as both originals do (their gold labels are the labels of the tokens that survive
truncation); ``ner_truncation: miss`` scores them as predicted ``O`` instead. How many were
cut is logged and recorded in results.json under ``inputs``.

A sub-token that runs across an entity edge ("한국을" holding the entity "한국") cannot be
tagged right at the character level; building features logs the F1 a perfect tagger
would reach through the tokens when it is below 99.5. ``ner_char_tokens: true`` feeds
each character as a word of its own instead (ceiling 100, but no multi-character pieces).

YAML keys of this task (``NerTask.config_defaults``): ``ner_format`` (``auto`` | ``naver``
| ``naver-challenge`` | ``klue``; ``auto`` takes ``klue`` for a ``task`` starting with
``klue``, else the first data file's layout) and ``ner_char_tokens`` (default false).
"""
import logging
import os

import numpy as np

from finetune import ner_metrics
from finetune.tasks.base import Task, register
from finetune.tasks.ner_readers import FORMATS, LABELS_OF_FORMAT, READERS, sniff_format
from finetune.tasks.presplit import Presplitter
from util.errors import UserInputError

IGNORE_INDEX = -100

logger = logging.getLogger(__name__)


def _continuation(tag):
    """The tag for the later characters of a token tagged ``tag``: B becomes I."""
    if tag.startswith("B-"):
        return "I-" + tag[2:]
    if tag.endswith("-B"):
        return tag[:-2] + "-I"
    return tag


def _first_subtoken_units(word_ids):
    """Unit w for the first sub-token of word w; None for the rest and the special tokens."""
    units, previous = [None] * len(word_ids), None
    for t, w in enumerate(word_ids):
        if w is not None and w != previous:
            units[t] = (w, w + 1)
        previous = w
    return units


def _char_units(ex, word_ids, starts):
    """For each token, the [first, last+1) range of characters (units) it predicts.

    A token predicts the characters from its own start to the next token's start in the
    same word (or the word's end), so characters the tokenizer drops still get a tag.
    """
    unit_start = ex.unit_starts()
    units = [None] * len(word_ids)
    for t, w in enumerate(word_ids):
        if w is None:
            continue
        end = len(ex.words[w])
        for t2 in range(t + 1, len(word_ids)):
            if word_ids[t2] != w:
                break
            if starts[t2] > starts[t]:
                end = starts[t2]
                break
        if end > starts[t]:
            units[t] = (unit_start[w] + starts[t], unit_start[w] + end)
    return units


@register("naver-ner", "ner")
class NerTask(Task):
    kind = "token_classification"
    primary_metric = "f1"
    config_defaults = {"ner_format": "auto", "ner_char_tokens": False, "ner_truncation": "drop"}

    def __init__(self, config):
        super().__init__(config)
        self._format = None
        self._explicit = False

    # -- which layout ----------------------------------------------------------------
    def data_format(self):
        """The layout of this run's files: YAML ``ner_format``, the task name, or the data."""
        if self._format is None:
            fmt = str(getattr(self.config, "ner_format", None) or "auto").lower()
            self._explicit = fmt != "auto"
            if fmt == "auto":
                task_name = str(getattr(self.config, "task", "") or "").lower()
                if task_name.startswith("klue"):
                    fmt = "klue"
                else:
                    fmt = self._sniff_config_files() or "naver"
            if fmt not in FORMATS:
                where = self.config.where("ner_format") if hasattr(self.config, "where") else "ner_format"
                raise UserInputError(
                    f"{where}: ner_format {fmt!r} is not one of auto, {', '.join(FORMATS)}"
                )
            self._format = fmt
        return self._format

    def _sniff_config_files(self):
        data_dir = getattr(self.config, "data_dir", None) or ""
        for key in ("train_file", "dev_file", "test_file"):
            path = getattr(self.config, key, None)
            if not path:
                continue
            for candidate in (path, os.path.join(data_dir, path)):
                if os.path.isfile(candidate):
                    return sniff_format(candidate)
        return None

    def labels(self):
        return list(LABELS_OF_FORMAT[self.data_format()])

    # -- data --------------------------------------------------------------------------
    def read_examples(self, path, split):
        expected = self.data_format()
        # An explicit ner_format is obeyed; otherwise each file is read in the layout it
        # looks like, as long as its tag set is this run's.
        found = expected if self._explicit else sniff_format(path)
        if LABELS_OF_FORMAT[found] is not LABELS_OF_FORMAT[expected]:
            raise UserInputError(
                f"{path}: looks like {found} NER data but this run reads {expected} data "
                "(set ner_format, or use files of one tag set)"
            )
        examples = READERS[found](path, split)
        if not examples:
            raise UserInputError(f"{path}: no examples")
        return examples

    def build_features(self, examples, tokenizer, max_seq_len, split):
        label_ids = {label: i for i, label in enumerate(self.labels())}
        presplit = Presplitter.for_run(self.config, tokenizer)
        char_tokens = bool(getattr(self.config, "ner_char_tokens", False))
        features = []
        for index, ex in enumerate(examples):
            # With ner_char_tokens each character of a char-level example is a word of its
            # own, which is then labelled exactly like a word-level example.
            by_char = ex.char_level and char_tokens
            words = [c for w in ex.words for c in w] if by_char else ex.words
            split_words, maps = presplit.words(words) if not by_char else (words, None)
            enc = tokenizer(split_words, is_split_into_words=True, truncation=True,
                            max_length=max_seq_len, return_offsets_mapping=True)
            word_ids = enc.word_ids()
            # Offsets of a pre-split word are relative to that word; map them back.
            starts = [None if w is None else (maps[w][s] if maps else s)
                      for w, (s, _) in zip(word_ids, enc["offset_mapping"])]
            if by_char or not ex.char_level:
                units = _first_subtoken_units(word_ids)
            else:
                units = _char_units(ex, word_ids, starts)
            labels = [IGNORE_INDEX if span is None else label_ids[ex.tags[span[0]]] for span in units]
            feature = {
                "input_ids": enc["input_ids"],
                "attention_mask": enc["attention_mask"],
                "labels": labels,
                "_example_index": index,
                "_units": units,
            }
            if "token_type_ids" in enc:
                feature["token_type_ids"] = enc["token_type_ids"]
            features.append(feature)
            ex.scored = max((span[1] for span in units if span is not None), default=0)
        self._note_truncation(examples, split, max_seq_len)
        self._warn_tokenization_ceiling(features, examples, split)
        return features

    def _drops_truncated(self):
        mode = str(getattr(self.config, "ner_truncation", None) or "drop").lower()
        if mode not in ("drop", "miss"):
            where = self.config.where("ner_truncation") if hasattr(self.config, "where") else "ner_truncation"
            raise UserInputError(f"{where}: ner_truncation must be drop or miss, got {mode!r}")
        return mode == "drop"

    def _note_truncation(self, examples, split, max_seq_len):
        cut = [len(ex.tags) - ex.scored for ex in examples if ex.scored < len(ex.tags)]
        unit = "characters" if any(ex.char_level for ex in examples) else "words"
        self.split_notes[split] = {f"truncated_{unit}": sum(cut), "truncated_sentences": len(cut),
                                   "ner_truncation": "drop" if self._drops_truncated() else "miss"}
        if cut:
            logger.warning("%s: %d %s in %d sentences lie beyond max_seq_len %d; they are %s", split, sum(cut),
                           unit, len(cut), max_seq_len,
                           "not scored (as the originals)" if self._drops_truncated() else "scored as misses")

    def _warn_tokenization_ceiling(self, features, examples, split):
        """Log the F1 a perfect tagger would get through these tokens, when it is below 100.

        A sub-token that runs across an entity edge ("한국을" with the entity "한국")
        cannot be tagged right at the character level; a vocab split by mecab, or
        ``ner_char_tokens: true``, avoids that.
        """
        if not any(ex.char_level for ex in examples):
            return
        # Without gold entities there is no ceiling: prediction tags its input all-O as a
        # placeholder (finetune/inference.py), where an F1 of 0.00 would be a false alarm.
        if split == "predict" or not any(tag != "O" for ex in examples for tag in ex.tags):
            return
        gold_ids = [[0 if l == IGNORE_INDEX else l for l in f["labels"]] for f in features]
        width = max((len(g) for g in gold_ids), default=0)
        one_hot = np.zeros((len(features), width, len(self.labels())), dtype=np.float32)
        for i, ids in enumerate(gold_ids):
            one_hot[i, np.arange(len(ids)), ids] = 1.0
        ceiling = self.compute_metrics(self.postprocess({"logits": one_hot}, features, examples), examples)
        self.tokenization_ceiling = ceiling["f1"]
        if ceiling["f1"] < 99.5:
            logger.warning(
                "%s: a perfect tagger would reach only %.2f entity F1 through this tokenization "
                "(sub-tokens crossing entity edges, or truncation); consider ner_char_tokens: true "
                "or a mecab vocab", split, ceiling["f1"])

    # -- model and predictions -----------------------------------------------------------
    def build_model(self, model_name_or_path, **config_kwargs):
        from transformers import AutoModelForTokenClassification

        labels = self.labels()
        return AutoModelForTokenClassification.from_pretrained(
            model_name_or_path,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            local_files_only=True,
            **config_kwargs,
        )

    def postprocess(self, outputs, features, examples):
        labels = self.labels()
        predicted_ids = np.asarray(outputs["logits"]).argmax(-1)
        predictions = [["O"] * len(ex.tags) for ex in examples]
        for row, feature in zip(predicted_ids, features):
            tags = predictions[feature["_example_index"]]
            for t, span in enumerate(feature["_units"]):
                if span is None:
                    continue
                tag = labels[row[t]]
                tags[span[0]] = tag
                for u in range(span[0] + 1, span[1]):
                    tags[u] = _continuation(tag)
        return predictions

    def scored_tags(self, predictions, examples):
        """(gold, predicted) tag sequences as scored: cut where truncation cut the input,
        unless ``ner_truncation: miss``."""
        if self._drops_truncated():
            kept = [len(ex.tags) if ex.scored is None else ex.scored for ex in examples]
            return [ex.tags[:n] for ex, n in zip(examples, kept)], [p[:n] for p, n in zip(predictions, kept)]
        return [ex.tags for ex in examples], predictions

    def compute_metrics(self, predictions, examples):
        return ner_metrics.entity_scores(*self.scored_tags(predictions, examples))

    def prediction_records(self, predictions, examples):
        records = []
        for ex, tags in zip(examples, predictions):
            records.append({
                "id": ex.guid,
                "text": " ".join(ex.words),
                "prediction": tags,
                "entities": [
                    {"type": kind, "text": ex.span_text(first, last)}
                    for kind, first, last in ner_metrics.entities(tags)
                ],
            })
        return records
