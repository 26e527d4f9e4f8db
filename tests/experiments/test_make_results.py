"""experiments/make_results.py on a small work directory laid out as nsmc_experiment leaves it.

The files are written by the project's own writers where that is cheap (preprocess.py's stats
line, pretrain/training.py's unsup_results.txt, the collapse monitor's warnings, the fine-tuning
RunOutputs and Selection for results.json); the rest in the formats those stages write.
"""
import json
import os
import subprocess
import sys
import types
from types import SimpleNamespace

import pytest

from experiments import make_results
from experiments.nsmc_experiment import PRETRAIN_HPARAMS
from experiments.stage_corpus import SOURCES
from finetune.outputs import RunOutputs
from finetune.selection import Selection
from util.files import write_json
from util.tokenization import tokenizer_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# (task, metric, dev scores per evaluation or None, test scores per evaluation; the last is the
# unscheduled evaluation at the end of training when ``end_extra``) by model and seed.
NSMC = {("pretrained", 1): [79.0, 83.0, 80.0], ("pretrained", 2): [81.0, 84.0, 82.0],
        ("random_init", 1): [77.0, 78.5, 78.0], ("random_init", 2): [76.0, 80.0, 79.0]}
# KorSTS: (dev, test) at steps 60 and 120.
KORSTS = {("pretrained", 1): ([70.0, 71.0], [76.0, 75.0]), ("pretrained", 2): ([69.0, 68.0], [72.0, 74.0]),
          ("random_init", 1): ([50.0, 55.0], [60.0, 62.0]), ("random_init", 2): ([58.0, 52.0], [61.0, 64.0])}
BLOCK = ("<!-- task_table -->\n## All tasks, several seeds\n\n| model | NSMC (acc) |\n|---|---|\n| x | 1.00 |\n"
         "<!-- /task_table -->\n")
CONTINUED = "<!-- continued_pretraining -->\n## Continued pretraining\n\nfigures\n<!-- /continued_pretraining -->\n"


def events(run_dir, curves):
    """TensorBoard scalars as the pretraining's tf.summary.scalar writes them (simple values)."""
    sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run_dir))
    for tag, points in curves.items():
        for step, value in points:
            writer.add_scalar(tag, value, step)
    writer.close()


def fine_tuning_run(run_dir, task, metric, steps, dev, test, extra_end, config=None):
    """results.json through the trainer's own RunOutputs and Selection, in the trainer's order."""
    splits = ["train", "dev", "test"] if dev else ["train", "test"]
    selection = Selection(SimpleNamespace(evaluate_test_during_training=True, eval_all_checkpoints=False),
                          splits, metric)
    outputs = RunOutputs(str(run_dir / f"{task}_experiment"), f"{task}_experiment", metric)
    models = {}
    for i, step in enumerate(steps):
        scores = {"test": {metric: test[i]}, **({"dev": {metric: dev[i]}} if dev else {})}
        for name in selection.splits_during_training():
            outputs.add_evaluation(step, i + 1.0, name, scores[name], 0.5, not (extra_end and i == len(steps) - 1))
        if not (extra_end and i == len(steps) - 1):
            selection.offer_published(step, scores[selection.published_split])
            outputs.results["published"] = selection.published
        if selection.offer_best(step, scores[selection.selection_split]):
            outputs.set_best(step, selection.selection_split, scores[selection.selection_split][metric],
                             scores[selection.selection_split])
            models = scores
    final = {name: {metric: models[name][metric] + 0.5} for name in ("dev", "test") if name in models}
    for name, metrics in final.items():  # the selected model re-scored: never the end-of-training figure
        outputs.add_evaluation(selection.best["step"], 0.0, name, metrics, 0.4)["final"] = True
    if dev:
        outputs.results["dev_selected"] = {"step": selection.best["step"], **final}
    outputs.save_results()
    outputs.close()
    if config:
        write_json(os.path.join(outputs.dir, "best_model", "finetune_config.json"), config)


def collapse_lines(steps):
    from pretrain import monitor

    lines = []
    watch = monitor.CollapseMonitor(num_warmup_steps=300, every=100, printer=lines.append)
    for step in range(steps):
        watch.update(step + 1, {"disc_auc_real": 0.9 if step < 400 else 0.52, "disc_recall_real": 0.0,
                                "disc_prob_std_real": 0.01})
    return lines


@pytest.fixture
def work(tmp_path, capsys):
    import preprocess
    from pretrain import training

    work = tmp_path / "work"
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_text("영화가 정말 재미있었다. 배우들의 연기가 좋았다.\n\n지루한 영화였다.\n", encoding="utf-8")
    (work / "logs").mkdir(parents=True)
    preprocess.main(["--corpus_dir", str(raw), "--output_file", str(work / "corpus" / "corpus.txt"), "--quiet"])
    out = capsys.readouterr()
    (work / "logs" / "preprocess.log").write_text(out.err + out.out, encoding="utf-8")
    write_json(work / "corpus_sources.json", {
        "reviews_kept": 1200, "dropped_test_id": 30, "dropped_test_text": 4,
        "dropped_benchmark_text": {"boddari_wikinews.txt": 52, "nsmc_reviews.txt": 3},
        "sources": {name: {"path": path, "license": license} for name, (path, license) in SOURCES.items()}})
    (work / "vocab").mkdir()
    (work / "vocab" / "vocab.txt").write_text("".join(f"t{i}\n" for i in range(120)), encoding="utf-8")
    write_json(work / "vocab" / "tokenizer_config.json", tokenizer_config("wordpiece", False))
    write_json(work / "tfrecords" / "stats.json", {"documents": 50, "sentences": 80, "tokens": 40960,
                                                   "examples": 6400, "unk_rate": 0.001, "max_seq_length": 64})
    hparams = dict(PRETRAIN_HPARAMS, vocab_file=str(work / "vocab"), num_train_steps=600)
    write_json(work / "pretrain_hparams.json", hparams)
    training.write_results(str(work / "model" / "results" / "unsup_results.txt"), training.with_real_token_spread({
        "disc_auc": 0.874, "disc_accuracy": 0.865, "disc_precision": 0.772, "disc_recall": 0.012,
        "disc_auc_real_tokens": 0.612, "disc_accuracy_real_tokens": 0.85, "disc_prob_mean_real_tokens": 0.2,
        "disc_prob_sq_mean_real_tokens": 0.0409, "masked_lm_accuracy": 0.083, "sampled_masked_lm_accuracy": 0.017,
        "disc_loss": 0.38, "global_step": 600}))
    events(work / "model", {"loss/total": [(1, 45.5), (300, 30.0), (600, 25.25)],
                            "loss/disc": [(1, 0.7), (600, 0.377)], "accuracy/disc_auc_real": [(1, 0.5), (600, 0.61)]})
    (work / "logs" / "pretrain.log").write_text("train step 100/600: loss 40\n" + "\n".join(collapse_lines(600))
                                                + "\n", encoding="utf-8")
    pilot = work / "model_lr1e-3_stopped"
    write_json(pilot / "pretrain_hparams.json", dict(hparams, learning_rate=1e-3, num_warmup_steps=100,
                                                     generator_hidden_size=1.0))
    events(pilot, {"loss/disc": [(100, 0.4), (400, 0.39)],
                   "accuracy/disc_auc_real": [(100, 0.53), (200, 0.52), (300, 0.52), (400, 0.55)],
                   "accuracy/disc_recall_real": [(s, 0.0) for s in (100, 200, 300, 400)],
                   "accuracy/disc_prob_std_real": [(s, 0.01) for s in (100, 200, 300, 400)]})
    write_json(work / "timings.json", {"preprocess": 30.0, "pretrain": 1800.0, "finetune_nsmc_pretrained_seed1": 100.0,
                                       "finetune_nsmc_random_init_seed1": 120.0})
    write_json(work / "experiment_args.json", {"work": str(work), "steps": 600, "vocab_size": 32000,
                                               "max_reviews": None, "nsmc_train": 2000, "nsmc_test": 500, "seeds": 2,
                                               "tasks": "nsmc,korsts", "parallel": 2, "num_processes": 2,
                                               "stop_after": None})
    for (model, seed), test in NSMC.items():
        config = {"num_train_epochs": 1, "train_batch_size": 32, "learning_rate": 1e-4, "max_seq_len": 64,
                  "logging_steps": 200, "save_steps": 200, "seed": seed}
        fine_tuning_run(work / "finetune" / "nsmc" / f"{model}_seed{seed}", "nsmc", "accuracy", [200, 400, 450],
                        None, test, True, config)
    for (model, seed), (dev, test) in KORSTS.items():  # these save no config: the settings come from FINETUNE
        fine_tuning_run(work / "finetune" / "korsts" / f"{model}_seed{seed}", "korsts", "spearman", [60, 120],
                        dev, test, False)
    return work


def row(text, label):
    return next(line for line in text.splitlines() if line.startswith(f"| {label} |"))


def test_results_from_the_work_dir_keep_the_blocks_other_scripts_wrote(work, tmp_path):
    output = tmp_path / "docs" / "results.md"
    output.parent.mkdir()
    output.write_text("# Old results\n\nstale text\n\n" + CONTINUED + "\n" + BLOCK, encoding="utf-8")
    make_results.main(["--work", str(work), "--output", str(output)])
    text = output.read_text(encoding="utf-8")
    assert "stale text" not in text and BLOCK in text and text.endswith(CONTINUED)
    assert "was dropped: 55 lines (`boddari_wikinews.txt` 52, `nsmc_reviews.txt` 3)" in text
    nsmc, korsts = text.split("## Fine-tuning on NSMC")[1].split("## Fine-tuning on KorSTS")

    # NSMC: the end of training is the unscheduled last evaluation, not the best or final one.
    assert row(nsmc, "model") == "| model | end of training, test | published protocol, test |"  # no dev file
    # Each cell: median [min–max] · mean ± sample std; for two seeds the median is the mean.
    assert row(nsmc, "(a) pretrained here") == ("| (a) pretrained here | 81.00 [80.00–82.00] · 81.00 ± 1.41 (n=2) "
                                                "| 83.50 [83.00–84.00] · 83.50 ± 0.71 (n=2) |")
    assert row(nsmc, "(b) random initialisation") == ("| (b) random initialisation "
                                                      "| 78.50 [78.00–79.00] · 78.50 ± 0.71 (n=2) "
                                                      "| 79.25 [78.50–80.00] · 79.25 ± 1.06 (n=2) |")
    assert row(nsmc, "gain (a) − (b)") == "| gain (a) − (b) | **+2.50** | **+4.25** |"
    assert ("on NSMC's end-of-training test accuracy: **missed**: the gain is +2.50 points." in text)
    assert "`best_model/finetune_config.json`): num_train_epochs 1, train_batch_size 32, learning_rate 0.0001" in nsmc
    assert "seed 1 / 2" in nsmc and "the first 2,000 reviews" in nsmc

    # KorSTS: dev-selected = the final test score of the model chosen on dev (+0.5 in the fixture).
    assert row(korsts, "(a) pretrained here") == ("| (a) pretrained here | 74.50 [74.00–75.00] · 74.50 ± 0.71 (n=2) "
                                                  "| 75.00 [74.00–76.00] · 75.00 ± 1.41 (n=2) "
                                                  "| 74.00 [72.50–75.50] · 74.00 ± 2.12 (n=2) |")
    assert row(korsts, "(b) random initialisation") == ("| (b) random initialisation "
                                                        "| 63.00 [62.00–64.00] · 63.00 ± 1.41 (n=2) "
                                                        "| 63.00 [62.00–64.00] · 63.00 ± 1.41 (n=2) "
                                                        "| 62.00 [61.50–62.50] · 62.00 ± 0.71 (n=2) |")
    assert row(korsts, "gain (a) − (b)") == "| gain (a) − (b) | **+11.50** | **+12.00** | **+12.00** |"
    assert "from `nsmc_experiment.FINETUNE`; no run saved its config): num_train_epochs 3" in korsts

    # Pretraining: both AUCs, the spread from the streamed means, warnings, curves, the pilot.
    assert row(text, "discriminator AUC") == "| discriminator AUC | 0.874 | 0.612 |"
    assert row(text, "P(replaced), std") == "| P(replaced), std | – | 0.030 |"
    assert "warned 2 times, at steps 500, 600" in text
    assert "600 steps of 32, in 30.0 minutes (evaluation included): 19,200 examples, 300% of" in text
    assert row(text, "total loss") == "| total loss | 45.500 (step 1) | 25.250 (step 600) |"
    assert (figures := tmp_path / "docs" / "figures" / "loss_total.png").is_file() and figures.stat().st_size
    assert "![total loss](figures/loss_total.png)" in text
    assert row(text, "`model_lr1e-3_stopped`") == ("| `model_lr1e-3_stopped` | 0.001 | 100 | generator_hidden_size 1.0 "
                                                   "| 400 | 0.550 | 0.390 | yes, at 3 of the logged steps from 200 |")
    assert row(text, "Dialog-KoELECTRA-Small (seed 000)") == "| Dialog-KoELECTRA-Small (seed 000) | 90.01 | 78.96 |"
    assert "--steps 600" in text and "fine-tuning 220 in all" in text


def test_optional_inputs_missing_still_write_the_results(work, tmp_path):
    import shutil

    for name in ("finetune/korsts", "model_lr1e-3_stopped"):
        shutil.rmtree(work / name)
    for name in os.listdir(work / "model"):
        if name.startswith("events.out"):
            os.remove(work / "model" / name)
    output = tmp_path / "results.md"
    make_results.main(["--work", str(work), "--output", str(output)])
    text = output.read_text(encoding="utf-8")
    assert row(text.split("## Fine-tuning on KorSTS")[1], "gain (a) − (b)") == "| gain (a) − (b) | – |"
    assert "(no TensorBoard events in model/)" in text and "Pilot runs" not in text
    assert "**missed**: the gain is +2.50 points." in text


def test_a_missing_required_file_is_one_line_naming_it(work, tmp_path):
    os.remove(work / "tfrecords" / "stats.json")
    output = tmp_path / "results.md"
    done = subprocess.run([sys.executable, "-m", "experiments.make_results", "--work", str(work),
                           "--output", str(output)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1 and not output.exists()
    assert done.stderr.splitlines() == [f"error: {work / 'tfrecords' / 'stats.json'}: not found "
                                        f"(written by experiments/nsmc_experiment.py --work {work})"]
