"""experiments/continued_results.py on a small work directory laid out as continued_pretraining leaves it.

results.json files are written by the trainer's own RunOutputs; the rest in the formats the
stages write (stats.json, unsup_results.txt, vocab_extension.json, the pretraining log's resume line).
"""
import json
import os

import pytest

from experiments import continued_results
from finetune.outputs import RunOutputs
from util.files import write_json

MODELS = [name for name, _ in continued_results.MODELS]
# End-of-training test accuracy per model and seed (the last non-final evaluation is what counts).
ACCURACY = {"general": [60.0, 62.0, 61.0], "written": [61.0, 63.0, 62.0], "dialogue": [70.0, 71.0, 72.0],
            "dialogue_extended": [70.5, 71.0, 71.5]}


def fine_tuning_run(run_dir, accuracies_by_step):
    outputs = RunOutputs(str(run_dir / continued_results.TASK), continued_results.TASK, "accuracy")
    for step, acc in accuracies_by_step:
        outputs.add_evaluation(step, 1.0, "test", {"accuracy": acc, "macro_f1": acc - 10}, 0.5, True)
    best = max(a for _, a in accuracies_by_step)
    outputs.add_evaluation(1, 0.0, "test", {"accuracy": best + 5, "macro_f1": best}, 0.4)["final"] = True
    outputs.save_results()
    outputs.close()


@pytest.fixture
def work(tmp_path):
    work = tmp_path / "continued"
    write_json(str(work / "corpus_sources.json"), {
        "3i4k_train_val_kept": 54000, "3i4k_train_val_dropped": 1100, "3i4k_test_held_out": 6064,
        "comments_kept": 33000, "comments_held_out": 675, "reviews_kept": 58000, "reviews_held_out": 1199,
        "held_out_every": 50, "dropped_as_test_text": {"written": 28}})
    write_json(str(work / "experiment_args.json"), {"work": "data/continued", "vocab_size": 16000,
                                                    "train_limit": 5000, "seeds": 3})
    write_json(str(work / "vocab" / "extended" / "vocab_extension.json"),
               {"num_new": 300, "new_tokens": [], "tokens_per_sentence": {"before": 9.5, "after": 8.1}})
    for label, tokens in (("written", 1000), ("dialogue", 2000), ("dialogue_extended", 1800),
                          ("heldout", 400), ("heldout_extended", 350)):
        write_json(str(work / "tfrecords" / label / "stats.json"),
                   {"sentences": 100, "tokens": tokens, "examples": tokens // 64, "unk_rate": 0.0001})
    hparams = {"num_train_steps": 1200, "train_batch_size": 32, "learning_rate": 2e-4, "num_warmup_steps": 500,
               "num_hidden_layers": 4, "hidden_size": 256, "temperature": 2.0, "max_seq_length": 64}
    write_json(str(work / "hparams_general.json"), hparams)
    write_json(str(work / "hparams_dialogue.json"), dict(hparams, num_train_steps=500, learning_rate=1e-4))
    for i, name in enumerate(MODELS):
        results = work / "heldout_eval" / name / "results" / "unsup_results.txt"
        results.parent.mkdir(parents=True)
        results.write_text(f"disc_auc_real_tokens = {0.7 + i / 100}\nmasked_lm_accuracy = {0.2 + i / 100}\n"
                           f"masked_lm_loss = {6.0 - i / 10}\n", encoding="utf-8")
        for seed, acc in enumerate(ACCURACY[name], 1):
            fine_tuning_run(work / "finetune" / name / f"seed{seed}", [(160, acc - 3), (313, acc)])
    (work / "logs").mkdir()
    (work / "logs" / "pretrain_general.log").write_text(
        "model dir x\nresuming from x/model.ckpt-250 at step 250 of 1200\ntrain step 300/1200: ...\n", encoding="utf-8")
    return work


def row(text, label):
    return next(line for line in text.splitlines() if line.startswith(f"| {label} |"))


def test_section_is_built_from_the_runs_files(work, tmp_path):
    output = tmp_path / "results.md"
    output.write_text("# Results\n\nkept text\n", encoding="utf-8")
    continued_results.main(["--work", str(work), "--output", str(output)])
    text = output.read_text(encoding="utf-8")
    assert text.startswith("# Results\n\nkept text\n") and "<!-- /continued_pretraining -->" in text
    held_out, finetuned = text.split("### On held-out dialogue text")[1].split("### Fine-tuned on 3i4k")
    # Tokens per line of the held-out text: 400 / 100 under the general vocab, 350 / 100 extended.
    assert row(held_out, "+ dialogue text, vocab extended") == \
        "| + dialogue text, vocab extended | 5.700 | 0.230 | 0.730 | 3.50 |"
    assert row(held_out, "general (written text, from scratch)").endswith("| 4.00 |")
    # End of training, never the final (selected-on-test) evaluation.
    assert row(finetuned, "+ dialogue text") == ("| + dialogue text | 71.00 [70.00–72.00] · 71.00 ± 1.00 (n=3) "
                                                 "| 61.00 [60.00–62.00] · 61.00 ± 1.00 |")
    assert "dialogue − control (the domain, beyond more steps): +9.00 points, larger than" in finetuned
    assert "dialogue with extended vocab − dialogue: +0.00 points, within" in finetuned
    assert "general: resuming from x/model.ckpt-250 at step 250 of 1200" in text
    # Rerun: the block is replaced, not appended again.
    continued_results.main(["--work", str(work), "--output", str(output)])
    assert output.read_text(encoding="utf-8").count("<!-- continued_pretraining -->") == 1


def test_missing_run_file_is_one_line(work, tmp_path):
    os.remove(work / "hparams_general.json")
    with pytest.raises(Exception) as e:
        continued_results.build(str(work))
    assert "hparams_general.json: not found" in str(e.value) and "\n" not in str(e.value)
