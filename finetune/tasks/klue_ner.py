"""KLUE-NER as KLUE scores it: entity-level and character-level macro F1.

The data (``klue-ner-v1.1_<split>.tsv``: ``## guid<TAB>marked sentence`` then ``char<TAB>tag``
lines), the features and the head are the NER task's with ``ner_format: klue``
(finetune/tasks/ner.py): each sub-token is labelled with its first character's tag, and a
predicted tag is spread back over its characters (``B-X`` then ``I-X``), as KLUE-baseline
does. Scores are on the non-space characters that survive truncation, as KLUE-baseline's:

- ``entity_macro_f1``: seqeval strict IOB2, macro over the six types;
- ``char_macro_f1`` (selects the checkpoint, as KLUE-baseline's ``--metric_key``): sklearn macro
  F1 over the characters and KLUE's 13 labels, ``O`` included;
- ``f1``/``precision``/``recall``: the seeds' entity F1 (seqeval's default micro mode), for
  comparison with the Naver NER column.
Definitions and the one difference from KLUE-baseline: finetune/klue_metrics.py.
"""
from finetune import klue_metrics
from finetune.tasks.base import register
from finetune.tasks.ner import NerTask
from util.errors import UserInputError


@register("klue-ner")
class KlueNerTask(NerTask):
    # KLUE-baseline selects its NER checkpoint by character macro F1 (run_all.sh --metric_key).
    primary_metric = "char_macro_f1"

    def data_format(self):
        fmt = str(getattr(self.config, "ner_format", None) or "auto").lower()
        if fmt not in ("auto", "klue"):
            where = self.config.where("ner_format") if hasattr(self.config, "where") else "ner_format"
            raise UserInputError(f"{where}: a klue-ner task reads KLUE's layout only; ner_format {fmt!r} "
                                 "belongs to a naver-ner task")
        self._format, self._explicit = "klue", True
        return self._format

    def compute_metrics(self, predictions, examples):
        gold, predicted = self.scored_tags(predictions, examples)
        scores = super().compute_metrics(predictions, examples)
        scores["entity_macro_f1"] = klue_metrics.ner_entity_macro_f1(gold, predicted)
        scores["char_macro_f1"] = klue_metrics.ner_char_macro_f1(gold, predicted)
        return scores
