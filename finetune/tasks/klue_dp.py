"""KLUE-DP: word-level (eojeol) dependency parsing, KLUE's release layout and scores.

File (``klue-dp-v1.1_train.tsv`` / ``_dev.tsv``): ``## `` comment lines, then per sentence a
``## <guid><TAB><sentence>`` line and one line per word,
``INDEX<TAB>WORD_FORM<TAB>LEMMA<TAB>POS<TAB>HEAD<TAB>DEPREL`` (HEAD 0 = root), a blank line
between sentences. The lemma and POS columns are read past: the head (finetune/dp_model.py)
works from the words alone, so raw text can be parsed at prediction time.

Each word is tokenized on its own (``is_split_into_words``); the model pools its first and
last sub-token. Words cut off by ``max_seq_len`` are not scored, as in KLUE-baseline (its
features stop at the last word that fits); their count is logged and recorded in
results.json under ``inputs``. A kept word whose gold head was cut off stays scored (no
prediction can be right) but adds nothing to the loss.
Metrics (finetune/dp_metrics.py): KLUE's ``uas_macro_f1`` and ``las_macro_f1`` (the figures
KLUE reports; the last selects the checkpoint) and plain ``uas``/``las`` accuracy.
"""
import dataclasses
import logging

from finetune import dp_metrics
from finetune.tasks.base import Task, register
from finetune.tasks.presplit import Presplitter
from util.errors import UserInputError

IGNORE_INDEX = -100
LABELS = dp_metrics.KLUE_DP_LABELS

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class DpExample:
    guid: str
    words: list
    heads: list  # int per word, 0 = root (gold; zeros when unlabelled)
    relations: list  # relation name per word
    line: int  # 1-based line of the sentence's first word (or its ## header)
    scored: int = None  # words that survive truncation; None = all


def read_klue_dp(path, split, labelled=True):
    """KLUE-DP's TSV as a list of DpExample; malformed lines name ``path`` and the line."""
    examples = []
    state = {"guid": None, "line": 0, "rows": [], "lines": []}

    def flush():
        rows = state["rows"]
        if rows:
            words = [w for w, _, _ in rows]
            heads = [h for _, h, _ in rows]
            for line_no, head in zip(state["lines"], heads):
                if head > len(words):
                    raise UserInputError(f"{path}:{line_no}: head {head} is past the sentence's {len(words)} words")
            examples.append(DpExample(state["guid"] or f"{split}-{len(examples)}", words, heads,
                                      [r for _, _, r in rows], state["line"]))
        state.update(guid=None, rows=[], lines=[])

    try:
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                line = line.rstrip("\n").rstrip("\r")
                if line.startswith("##"):
                    if line.count("\t") == 1:  # '## guid<TAB>sentence'; other ## lines describe the file
                        flush()
                        state["guid"], state["line"] = line[2:].split("\t")[0].strip() or None, line_no
                    continue
                if not line.strip():
                    flush()
                    continue
                fields = line.split("\t")
                if len(fields) < (6 if labelled else 2):
                    raise UserInputError(f"{path}:{line_no}: expected INDEX, WORD_FORM, LEMMA, POS, HEAD, DEPREL "
                                         f"separated by tabs, got {len(fields)} field(s)")
                if not fields[0].strip().isdigit() or int(fields[0]) != len(state["rows"]) + 1:
                    raise UserInputError(f"{path}:{line_no}: word index {fields[0]!r}, expected "
                                         f"{len(state['rows']) + 1}")
                if not fields[1].strip() or any(c.isspace() for c in fields[1].strip()):
                    raise UserInputError(f"{path}:{line_no}: WORD_FORM {fields[1]!r} must be one non-empty word")
                head, relation = 0, LABELS[0]
                if labelled:
                    if not fields[4].strip().isdigit():
                        raise UserInputError(f"{path}:{line_no}: HEAD {fields[4]!r} is not a word index")
                    head, relation = int(fields[4]), fields[5].strip()
                    if relation not in LABELS:
                        raise UserInputError(f"{path}:{line_no}: DEPREL {relation!r} is not one of KLUE's "
                                             f"{len(LABELS)} relations ({' '.join(LABELS)})")
                if not state["rows"] and state["guid"] is None:
                    state["line"] = line_no
                state["rows"].append((fields[1].strip(), head, relation))
                state["lines"].append(line_no)
    except FileNotFoundError:
        raise UserInputError(f"KLUE-DP data file not found: {path}") from None
    except UnicodeDecodeError as e:
        raise UserInputError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    flush()
    if not examples:
        raise UserInputError(f"{path}: no sentences (expected KLUE-DP's layout: '## guid<TAB>sentence' "
                             "then one INDEX<TAB>WORD<TAB>LEMMA<TAB>POS<TAB>HEAD<TAB>DEPREL line per word)")
    return examples


def word_positions(word_ids, n_words):
    """(first, last) sub-token index of each of the first ``n_words`` words; None past the cut.

    A word the tokenizer gave no token (e.g. only characters it drops) borrows the previous
    word's last token, so it still has a vector.
    """
    first, last = [None] * n_words, [None] * n_words
    for t, w in enumerate(word_ids):
        if w is None:
            continue
        if first[w] is None:
            first[w] = t
        last[w] = t
    kept = max((w + 1 for w in word_ids if w is not None), default=0)
    previous = 0  # [CLS]
    for w in range(kept):
        if first[w] is None:
            first[w] = last[w] = previous
        previous = last[w]
    return first[:kept], last[:kept]


@register("klue-dp")
class KlueDpTask(Task):
    kind = "dependency_parsing"
    primary_metric = "las_macro_f1"
    # Sizes of the arc and relation projections (KLUE-baseline's --arc_space / --type_space).
    config_defaults = {"dp_arc_space": 512, "dp_type_space": 256}

    def labels(self):
        return list(LABELS)

    def read_examples(self, path, split):
        return read_klue_dp(path, split)

    def build_features(self, examples, tokenizer, max_seq_len, split):
        presplit = Presplitter.for_run(self.config, tokenizer)
        relation_ids = {r: i for i, r in enumerate(LABELS)}
        features = []
        for ex in examples:
            words, _ = presplit.words(ex.words)
            enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_seq_len)
            first, last = word_positions(enc.word_ids(), len(ex.words))
            ex.scored = len(first)
            kept = ex.scored
            feature = {
                "input_ids": enc["input_ids"],
                "attention_mask": enc["attention_mask"],
                "word_starts": [0] + first,
                "word_ends": [0] + last,
                # A gold head cut off by truncation cannot be scored by the model: no loss for that word.
                "head_labels": [h if h <= kept else IGNORE_INDEX for h in ex.heads[:kept]],
                "relation_labels": [relation_ids[r] for r in ex.relations[:kept]],
            }
            if "token_type_ids" in enc:
                feature["token_type_ids"] = enc["token_type_ids"]
            features.append(feature)
        cut = [len(ex.words) - ex.scored for ex in examples if ex.scored < len(ex.words)]
        self.split_notes[split] = {"truncated_words": sum(cut), "truncated_sentences": len(cut)}
        if cut:
            logger.warning("%s: %d words in %d sentences lie beyond max_seq_len %d; they are not scored "
                           "(as KLUE-baseline)", split, sum(cut), len(cut), max_seq_len)
        return features

    def build_model(self, model_name_or_path, **config_kwargs):
        from transformers import AutoConfig

        from finetune.dp_model import ElectraForDependencyParsing

        config = AutoConfig.from_pretrained(model_name_or_path, local_files_only=True)
        if config.model_type != "electra":
            raise UserInputError(f"{model_name_or_path}: the KLUE-DP head is built on ELECTRA encoders, "
                                 f"not {config.model_type}")
        labels = self.labels()
        config.num_labels = len(labels)
        config.id2label = dict(enumerate(labels))
        config.label2id = {label: i for i, label in enumerate(labels)}
        # A fine-tuned directory keeps its own sizes; a pretrained encoder takes the YAML's.
        for key in ("dp_arc_space", "dp_type_space"):
            if not hasattr(config, key):
                setattr(config, key, int(getattr(self.config, key, None) or self.config_defaults[key]))
        for key, value in config_kwargs.items():
            setattr(config, key, value)
        return ElectraForDependencyParsing.from_pretrained(model_name_or_path, config=config, local_files_only=True)

    def postprocess(self, outputs, features, examples):
        """(heads, relation names) per example, over its scored words."""
        heads, relations = outputs["heads"], outputs["relations"]
        predictions = []
        for i, ex in enumerate(examples):
            n = ex.scored if ex.scored is not None else len(ex.words)
            predictions.append(([int(h) for h in heads[i][:n]], [LABELS[int(r)] for r in relations[i][:n]]))
        return predictions

    def compute_metrics(self, predictions, examples):
        ids = {r: i for i, r in enumerate(LABELS)}
        kept = [len(p[0]) for p in predictions]
        return dp_metrics.attachment_scores(
            [ex.heads[:n] for ex, n in zip(examples, kept)],
            [[ids[r] for r in ex.relations[:n]] for ex, n in zip(examples, kept)],
            [p[0] for p in predictions], [[ids[r] for r in p[1]] for p in predictions])

    def prediction_records(self, predictions, examples):
        records = []
        for ex, (heads, relations) in zip(examples, predictions):
            records.append({"id": ex.guid, "text": " ".join(ex.words), "words": [
                {"index": i, "word": ex.words[i - 1], "head": h, "relation": r, "gold_head": ex.heads[i - 1],
                 "gold_relation": ex.relations[i - 1]}
                for i, (h, r) in enumerate(zip(heads, relations), 1)]})
        return records
