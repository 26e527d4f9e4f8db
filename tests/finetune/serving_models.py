"""Small fine-tuned models for the inference and serving tests, made by the project's own tools.

``make_nsmc_model`` fine-tunes the tiny ELECTRA of finetune_helpers (vocab learned from real
NSMC reviews) on the first 400 reviews of ../shared/data/nsmc's ``ratings_train.txt`` with
run_finetune's trainer, so the directory is a real ``best_model/``; tests feed it real reviews
from ``ratings_test.txt``. ``make_pair_model`` and ``make_ner_model`` do the same on the
Question Pair and KLUE-NER fixtures.
"""
import os

from finetune_helpers import FIXTURES, ROOT, make_tiny_electra, tiny_run_config

SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
NSMC = os.path.join(SHARED, "nsmc")
NER_QA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures_ner_qa")


def nsmc_lines(name="ratings_test.txt", limit=None, start=0):
    """Raw data lines (``id<TAB>document<TAB>label``) of an NSMC file, header skipped."""
    with open(os.path.join(NSMC, name), encoding="utf-8") as f:
        lines = f.read().splitlines()[1:]
    return lines[start:start + limit] if limit else lines[start:]


def nsmc_reviews(limit=200, start=0):
    """The first ``limit`` non-empty review texts of ``ratings_test.txt`` (after ``start``)."""
    docs = [line.split("\t")[1] for line in nsmc_lines(start=start)]
    return [d for d in docs if d.strip()][:limit]


def _run(settings, root):
    import yaml

    from finetune.config import load_config
    from finetune.tasks import task_config_defaults
    from finetune.trainer import run

    path = os.path.join(root, "run.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(settings, f, allow_unicode=True)
    run(load_config(path, extra_defaults=task_config_defaults()))
    return os.path.join(settings["ckpt_dir"], settings["task"], "best_model")


def make_nsmc_model(root, task="nsmc_serving", max_positions=128, **values):
    """A best_model/ fine-tuned on 400 real NSMC training reviews; returns its path."""
    data = os.path.join(root, "data")
    os.makedirs(data, exist_ok=True)
    header = "id\tdocument\tlabel"
    for name, lines in (("train.txt", nsmc_lines("ratings_train.txt", 400)),
                        ("test.txt", nsmc_lines("ratings_test.txt", 100))):
        with open(os.path.join(data, name), "w", encoding="utf-8") as f:
            f.write("\n".join([header] + lines) + "\n")
    texts = [line.split("\t")[1] for line in nsmc_lines("ratings_train.txt", 3000) if line.split("\t")[1]]
    tiny = make_tiny_electra(os.path.join(root, "tiny"), vocab_size=1500, texts=texts, max_positions=max_positions)
    settings = tiny_run_config(tiny, os.path.join(root, "ckpt"), task=task, data_dir=data, train_file="train.txt",
                               test_file="test.txt", max_steps=25, logging_steps=0, save_steps=0, **values)
    return _run(settings, root)


def make_pair_model(root):
    """A Question Pair best_model/ (text_a<TAB>text_b) from the fixture files."""
    tiny = make_tiny_electra(os.path.join(root, "tiny"))
    settings = tiny_run_config(tiny, os.path.join(root, "ckpt"), task="question-pair_serving",
                               data_dir=os.path.join(FIXTURES, "question-pair"), train_file="train.tsv",
                               test_file="test.tsv", max_steps=4, logging_steps=0, save_steps=0)
    return _run(settings, root)


def make_ner_model(root):
    """A KLUE-NER (character-tagged) best_model/ from the fixture file."""
    from fixtures_ner_qa.tiny_model import fixture_texts

    tiny = make_tiny_electra(os.path.join(root, "tiny"), vocab_size=900, texts=fixture_texts())
    settings = tiny_run_config(tiny, os.path.join(root, "ckpt"), task="klue-ner_serving", data_dir=NER_QA,
                               train_file="klue_ner.tsv", test_file="klue_ner.tsv", dev_file="", max_steps=30,
                               learning_rate=5e-3, logging_steps=0, save_steps=0)
    return _run(settings, root)
