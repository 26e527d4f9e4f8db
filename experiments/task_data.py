"""The task families' data for experiments/task_table.py, laid out from ../shared/data.

Each task gets the files its shipped ``conf/<task>/electra-small.yaml`` expects, cut to a
training cap (and an evaluation cap) so a run fits a CPU budget. Where ../shared/data lacks a
split (read each folder's MANIFEST.md), another real file stands in, split with a fixed seed,
and the returned notes say so: these notes go into the table, word for word.

Rows are sampled and split with ``random.Random(split_seed)`` by finetune/splits.py, the code
fine-tuning's ``max_train_examples`` and ``dev_split`` use, and kept in file order; TSV rows are
copied byte for byte (no re-quoting), so NSMC's escaped quotes survive as training reads them.
"""
import dataclasses
import json
import os
import random

from experiments import intent_splits
from finetune import splits
from util.files import atomic_write

# ../shared/data beside the checkout (as experiments/stage_corpus.py finds it), without its imports.
SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data")

TASKS = ("nsmc", "question-pair", "hate-speech", "kornli", "korsts", "paws", "korquad",
         "klue-nli", "klue-sts", "klue-ner", "klue-dp", "intent-3i4k", "intent-chatbot")
# Supported fine-tuning tasks the table cannot lay out from ../shared/data, and why.
NOT_AT_HAND = {
    "naver-ner": "its data is not redistributable and not at hand: the table measures NER on KLUE-NER (task "
                 "klue-ner), whose runs also report the seeds' micro entity F1 (`f1` in results.json); with "
                 "Naver's data, fine-tune with conf/naver-ner/electra-small.yaml",
}
KLUE_FILES = {"klue-nli": "klue-nli-v1.1", "klue-sts": "klue-sts-v1.1", "klue-ner": "klue-ner-v1.1"}


@dataclasses.dataclass
class TaskData:
    files: dict  # train_file / dev_file / test_file overrides ("" = absent)
    report_split: str  # the split whose final evaluation is reported
    notes: list  # what was trained and evaluated on, and how it differs from the published protocol
    overrides: dict = dataclasses.field(default_factory=dict)  # other YAML keys this layout needs


def _rows(path):
    """(header line, data lines) of a headed TSV, as bytes; blank lines dropped."""
    with open(path, "rb") as f:
        lines = [line for line in f.read().split(b"\n") if line.strip()]
    return lines[0], lines[1:]


def _write(path, header, rows):
    with atomic_write(path, "wb") as f:
        f.write(b"\n".join([header] + rows) + b"\n")


def _capped(name, source, target, limit, rng):
    header, rows = _rows(source)
    kept = splits.sample(rows, limit, rng)
    _write(target, header, kept)
    return f"{name}: {len(kept):,} of {len(rows):,} rows of `{os.path.basename(source)}`"


def lay_out(task, data_dir, train_limit=None, eval_limit=None, split_seed=0, shared=SHARED):
    """Write ``task``'s capped files into ``data_dir``; returns its TaskData."""
    if task in NOT_AT_HAND:
        raise ValueError(f"{task}: {NOT_AT_HAND[task]}")
    os.makedirs(data_dir, exist_ok=True)
    rng = random.Random(split_seed)
    src = lambda *p: os.path.join(shared, *p)  # noqa: E731
    dst = lambda name: os.path.join(data_dir, name)  # noqa: E731
    notes = []
    if task == "nsmc":
        notes.append(_capped("train", src("nsmc", "ratings_train.txt"), dst("ratings_train.txt"), train_limit, rng))
        notes.append(_capped("test", src("nsmc", "ratings_test.txt"), dst("ratings_test.txt"), eval_limit, rng))
        notes.append("no dev split (as published): the best checkpoint is selected on test")
        return TaskData({}, "test", notes)
    if task == "question-pair":
        for split, name in (("train", "train.tsv"), ("dev", "dev.tsv"), ("test", "test.tsv")):
            limit = train_limit if split == "train" else eval_limit
            notes.append(_capped(split, src("question-pair", "koelectra", name), dst(name), limit, rng))
        return TaskData({}, "test", notes)
    if task == "hate-speech":
        notes.append(_capped("train", src("korean-hate-speech", "koelectra", "train.tsv"), dst("train.tsv"),
                             train_limit, rng))
        notes.append(_capped("test", src("korean-hate-speech", "koelectra", "val.tsv"), dst("val.tsv"),
                             eval_limit, rng))
        notes.append("the published dev file `val.tsv` is the test split (official test labels are not public); "
                     "input as the YAML's `hate_speech_input` says (the comment alone by default, as the seeds)")
        return TaskData({}, "test", notes)
    if task in ("kornli", "paws"):
        folder, dev_name, test_name, train_name = {
            "kornli": ("kornli", "xnli.dev.ko.tsv", "xnli.test.ko.tsv", "multinli.train.ko.tsv"),
            "paws": ("paws-x-ko", "dev_2k.tsv", "test_2k.tsv", "translated_train.tsv")}[task]
        header, rows = _rows(src(folder, dev_name))
        train, dev = splits.hold_out(rows, 0.1, rng, train_limit, eval_limit)
        _write(dst(train_name), header, train)
        _write(dst(dev_name), header, dev)
        notes.append(f"the published training set (`{train_name}`) is not at hand: `{dev_name}` "
                     f"({len(rows):,} rows) split 90/10 with seed {split_seed} into train ({len(train):,}) and "
                     f"dev ({len(dev):,}, selects the checkpoint)")
        notes.append(_capped("test", src(folder, test_name), dst(test_name), eval_limit, rng))
        return TaskData({}, "test", notes)
    if task == "korsts":
        for split, name in (("train", "sts-train.tsv"), ("dev", "sts-dev.tsv"), ("test", "sts-test.tsv")):
            limit = train_limit if split == "train" else eval_limit
            notes.append(_capped(split, src("korsts", name), dst(name), limit, rng))
        return TaskData({}, "test", notes)
    if task == "korquad":
        with open(src("korquad-v1", "KorQuAD_v1.0_dev.json"), encoding="utf-8") as f:
            doc = json.load(f)
        train, held_out = splits.split(doc["data"], 0.8, rng)
        train = _cap_questions(train, train_limit)
        held_out = _cap_questions(held_out, eval_limit)
        for name, part in (("KorQuAD_v1.0_train.json", train), ("KorQuAD_v1.0_dev.json", held_out)):
            with atomic_write(dst(name)) as f:
                json.dump(dict(doc, data=part), f, ensure_ascii=False)
        notes.append(f"KorQuAD 1.0 train is not at hand: the dev file's {len(doc['data'])} articles split 80/20 "
                     f"by article with seed {split_seed}; train {_questions(train):,} questions, evaluation on the "
                     f"held-out {_questions(held_out):,} (reported as dev), not the full dev set")
        return TaskData({}, "dev", notes)
    if task == "klue-dp":
        return _lay_out_klue_dp(src("klue-dev", "klue-dp-v1.1", "klue-dp-v1.1_dev.tsv"), dst, train_limit,
                                eval_limit, split_seed, rng)
    if task in KLUE_FILES:
        return _klue(task, data_dir, train_limit, eval_limit, split_seed, rng, shared)
    if task == "intent-3i4k":
        folder = src(*intent_splits.THREEI4K_DIR.split(os.sep))
        for split, name, limit in (("train", "fci_train_val.txt", train_limit), ("test", "fci_test.txt", eval_limit)):
            with open(os.path.join(folder, name), "rb") as f:
                rows = [line for line in f.read().split(b"\n") if line.strip()]
            kept = splits.sample(rows, limit, rng)
            with atomic_write(dst(name), "wb") as f:
                f.write(b"\n".join(kept) + b"\n")
            notes.append(f"{split}: {len(kept):,} of {len(rows):,} lines of the official `{name}`")
        notes.append("no dev split (as Dialog-KoELECTRA's isac YAML): the best checkpoint is selected on test; "
                     "the test utterances are removed from the experiments' pretraining corpus")
        return TaskData({}, "test", notes)
    if task == "intent-chatbot":
        header, train, test = intent_splits.chatbot_split(shared)
        kept_train, kept_test = splits.sample(train, train_limit, rng), splits.sample(test, eval_limit, rng)
        intent_splits.write_chatbot_split(data_dir, shared, kept_train, kept_test)
        notes.append(f"no official split: the {len(train) + len(test):,} rows of `ChatbotData.csv` split by distinct "
                     f"question {1 - intent_splits.CHATBOT_TEST_FRACTION:.0%}/{intent_splits.CHATBOT_TEST_FRACTION:.0%} "
                     f"with the fixed seed {intent_splits.CHATBOT_SPLIT_SEED} of experiments/intent_splits.py "
                     f"(not --split_seed, so pretraining can leave its test questions out); train {len(kept_train):,} "
                     f"of {len(train):,} rows, test {len(kept_test):,} of {len(test):,}; the question alone is "
                     "classified; no dev split: the best checkpoint is selected on test")
        return TaskData({}, "test", notes)
    raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")


def _klue(task, data_dir, train_limit, eval_limit, split_seed, rng, shared):
    """KLUE's dev file (the only labelled split at hand) cut 80/20 into train and a held-out dev."""
    name = KLUE_FILES[task]
    source = os.path.join(shared, "klue-dev", name, f"{name}_dev" + (".tsv" if task == "klue-ner" else ".json"))
    if task == "klue-ner":
        _, items = _klue_tsv_sentences(source)
    else:
        with open(source, encoding="utf-8") as f:
            items = json.load(f)
    train, held_out = splits.hold_out(items, 0.2, rng, train_limit, eval_limit)
    ext = ".tsv" if task == "klue-ner" else ".json"
    for split, part in (("train", train), ("dev", held_out)):
        with atomic_write(os.path.join(data_dir, f"{name}_{split}{ext}")) as f:
            if task == "klue-ner":
                f.write("\n\n".join(part) + "\n\n")
            else:
                json.dump(part, f, ensure_ascii=False)
    unit = "sentences" if task == "klue-ner" else "examples"
    notes = [f"KLUE's training set is not at hand: `{name}_dev` ({len(items):,} {unit}) split 80/20 with seed "
             f"{split_seed}; train {len(train):,}, held-out dev {len(held_out):,} (selects the checkpoint and is "
             "reported), not the full dev set: not comparable with KLUE's published dev or test figures"]
    return TaskData({}, "dev", notes)


def _klue_tsv_sentences(path):
    """(the file's leading comment lines, its sentence blocks) of a KLUE NER or DP TSV.

    The release opens with '## ' comments, then each sentence: a '## guid<TAB>sentence' header
    and its rows, blank-line separated. A comment may hold tabs too (NER's '## 컬럼명 :
    CHAR<TAB>NE_TAG' has exactly one, as a header), so the first sentence's header is told by
    position: the last of the '##' lines the file opens with, the one its rows follow."""
    with open(path, encoding="utf-8") as f:
        blocks = [b for b in f.read().split("\n\n") if b.strip()]
    lines = blocks[0].split("\n")
    opening = 0
    while opening < len(lines) and lines[opening].startswith("##"):
        opening += 1
    comments = lines[:max(opening - 1, 0)]
    blocks[0] = "\n".join(lines[len(comments):])
    return comments, blocks


def _lay_out_klue_dp(source, dst, train_limit, eval_limit, split_seed, rng):
    """KLUE-DP's dev sentences split 90/10 into the release's train/dev names (no train file at hand)."""
    comments, blocks = _klue_tsv_sentences(source)  # the comments are kept atop each file
    train, dev = splits.hold_out(blocks, 0.1, rng, train_limit, eval_limit)
    for name, part in (("klue-dp-v1.1_train.tsv", train), ("klue-dp-v1.1_dev.tsv", dev)):
        with atomic_write(dst(name)) as f:
            f.write("\n".join(comments + ["\n\n".join(part)]) + "\n\n")
    notes = [f"KLUE-DP train is not at hand: KLUE-DP v1.1 dev ({len(blocks):,} sentences) split 90/10 with seed "
             f"{split_seed}; train {len(train):,} sentences, evaluation on the held-out {len(dev):,} (reported "
             "as dev, also selects the checkpoint), not KLUE's dev set; KLUE's UAS/LAS macro F1 and plain "
             "attachment accuracy"]
    return TaskData({}, "dev", notes)


def _questions(articles):
    return sum(len(p["qas"]) for a in articles for p in a["paragraphs"])


def _cap_questions(articles, limit):
    """Whole articles, in order, until ``limit`` questions are reached (the last one cut)."""
    if limit is None:
        return articles
    kept, count = [], 0
    for article in articles:
        paragraphs = []
        for paragraph in article["paragraphs"]:
            if count >= limit:
                break
            qas = paragraph["qas"][:limit - count]
            count += len(qas)
            paragraphs.append(dict(paragraph, qas=qas))
        if paragraphs:
            kept.append(dict(article, paragraphs=paragraphs))
        if count >= limit:
            break
    return kept
