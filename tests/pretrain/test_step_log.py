"""The step log's figures: model FLOPs as docs/benchmarks.md counts them, enough lines for any run."""
import json
import os
import re

import pytest

from bench.pretraining_steps import config as bench_config
from configure_pretraining import PretrainingConfig
from pretrain.eval_summary import summary_lines
from pretrain.step_log import duration, flops_per_example, log_every, speed

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PUBLISHED = os.path.join(ROOT, "conf", "pretrain", "small_config_kor_wordpiece_train.json")


def published(tmp_path, **overrides):
    with open(PUBLISHED) as f:
        hparams = json.load(f)
    return PretrainingConfig(str(tmp_path / "model"), str(tmp_path), **dict(hparams, **overrides))


def small_flops(lm_positions, seq=128, vocab=40000):
    """Published Small's training FLOPs per example counted by hand: 3 x the forward matmuls (2 per multiply-add)."""
    hidden, layers, intermediate, embedding = 256, 12, 1024, 128
    per_token = layers * (2 * 4 * hidden * hidden + 2 * 2 * hidden * intermediate + 2 * 2 * seq * hidden)
    encoder = seq * (per_token + 2 * embedding * hidden)  # the layers and the embedding projection
    heads = seq * 2 * (hidden * hidden + hidden) + lm_positions * 2 * (hidden * embedding + embedding * vocab)
    return 3 * (2 * encoder + heads)  # generator as wide as the discriminator (generator_hidden_size 1.0)


def test_model_flops_are_counted_as_the_benchmarks_count_them(tmp_path):
    # The benchmarks' model is the published Small (generator as wide as the discriminator, vocab 40,000).
    assert flops_per_example(published(tmp_path)) == small_flops(int((0.15 + 0.005) * 128)) \
        == flops_per_example(bench_config(16))
    # The generator's vocabulary head runs at the masked positions only: more of them, more FLOPs.
    assert flops_per_example(published(tmp_path, mask_prob=0.25)) == small_flops(int((0.25 + 0.005) * 128))


def test_a_short_run_logs_enough_lines_to_see_its_curve(tmp_path):
    assert log_every(published(tmp_path, num_train_steps=400, iterations_per_loop=200)) == 20
    assert log_every(published(tmp_path, num_train_steps=1000000, iterations_per_loop=200)) == 200
    assert log_every(published(tmp_path, num_train_steps=5, iterations_per_loop=200)) == 1


def test_speed_and_time_left():
    rates = speed(batch_size=8, seq_length=128, flops_per_batch_example=1e9, steps=10, seconds=5.0, steps_left=100)
    assert rates == {"examples_per_sec": 16.0, "positions_per_sec": 2048.0, "model_flops_per_sec": 16e9,
                     "seconds_left": 50.0}
    assert duration(50) == "0m50s" and duration(3 * 86400 + 7200) == "3d02h"


def test_eval_summary_leads_with_real_tokens_and_says_when_nothing_is_found():
    # The figures of the 400-step run whose learning rate never rose.
    results = {"disc_auc": 0.887, "disc_accuracy": 0.855, "disc_precision": 0.0, "disc_recall": 0.0,
               "disc_auc_real_tokens": 0.504, "disc_accuracy_real_tokens": 0.86, "disc_prob_std_real_tokens": 0.0,
               "masked_lm_accuracy": 0.01}
    lines = summary_lines(results)
    assert lines[0].startswith("discriminator on real tokens") and "AUC 0.504" in lines[0]
    assert "calls every token original" in lines[1]
    assert "upstream's figures" in lines[2] and "disc_auc 0.887" in lines[2]
    learned = summary_lines(dict(results, disc_recall=0.4, disc_precision=0.7))
    assert not any("every token original" in line for line in learned)


def test_the_step_log_counts_real_tokens_and_writes_speed_to_tensorboard(tmp_path):
    config = published(tmp_path, num_train_steps=4, train_batch_size=2, max_seq_length=8)
    scalars, lines, values = [], [], []

    class Writer:
        def add_scalar(self, tag, value, step):
            scalars.append((tag, step))
            values.append((tag, step, value))

    from pretrain.step_log import StepLog

    log = StepLog(config, every=2, writer=Writer(), printer=lines.append)
    for step in range(1, 5):  # step 1 builds the graph and is left out of the rates
        log.update(step, {"loss": 1.0 / step}, real_tokens=4 if step > 1 else 16)
    assert [line.split(":")[0] for line in lines] == ["train step 2/4", "train step 4/4"]
    # Steps 3-4: 8 real tokens of 2 x 2 x 8 positions; tokens/s counts the real ones.
    seconds = float(re.search(r"([0-9.]+) examples/s", lines[1]).group(1))
    tokens, filled, positions = re.search(r", (\d+) tokens/s \((\d+)% of (\d+) positions/s\), ", lines[1]).groups()
    assert int(filled) == 25 and int(tokens) == pytest.approx(int(positions) / 4, abs=1)
    assert int(positions) == pytest.approx(seconds * 8, abs=1)
    assert " real tokens/s" not in lines[1]
    for tag in ("speed/tokens_per_sec", "speed/positions_per_sec", "speed/fill_rate", "speed/examples_per_sec"):
        assert (tag, 4) in scalars and (tag, 2) in scalars
    fill = [value for tag, step, value in values if tag == "speed/fill_rate"]
    assert fill == [0.25, 0.25]


def test_a_step_log_without_real_token_counts_says_its_tokens_are_positions(tmp_path):
    # The TF backend on a TPU fetches no input_mask sums.
    from pretrain.step_log import StepLog

    lines = []
    log = StepLog(published(tmp_path, num_train_steps=2, train_batch_size=2, max_seq_length=8), every=1,
                  printer=lines.append)
    for step in (1, 2):
        log.update(step, {"loss": 1.0})
    assert " positions/s (padding included), " in lines[0] and " tokens/s" not in lines[0]
