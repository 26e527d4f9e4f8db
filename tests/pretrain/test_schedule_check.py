"""The warnings said before step 1: a learning rate that never rises, checkpoints only at the end."""
import json
import os

import numpy as np
import tensorflow.compat.v1 as tf

from configure_pretraining import PretrainingConfig
from model.optimization import learning_rate_schedule
from pretrain.schedule_check import highest_learning_rate, schedule_warnings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PUBLISHED = os.path.join(ROOT, "conf", "pretrain", "small_config_kor_wordpiece_train.json")


def schedule_in_tf(learning_rate, total, warmup, power):
    graph = tf.Graph()
    with graph.as_default():
        step = tf.placeholder(tf.int64, [])
        lr = learning_rate_schedule(step, learning_rate, total, warmup, power)
        with tf.Session() as session:
            return np.array([session.run(lr, {step: s}) for s in range(total + 1)])


def test_the_highest_rate_is_the_optimizers():
    for total, warmup, power in ((400, 10000, 1.0), (400, 40, 1.0), (300, 250, 2.0), (50, 0, 1.0)):
        rates = schedule_in_tf(1e-4, total, warmup, power)
        step, rate = highest_learning_rate(1e-4, total, warmup, power)
        assert np.isclose(rate, rates.max(), rtol=1e-4), (total, warmup, power)
        assert np.isclose(rates[step], rates.max(), rtol=1e-4)


def test_the_published_json_on_a_400_step_run_says_the_rate_never_rises(tmp_path):
    with open(PUBLISHED) as f:
        hparams = json.load(f)
    config = PretrainingConfig(str(tmp_path / "model"), str(tmp_path), **dict(hparams, num_train_steps=400))
    lines = schedule_warnings(config)
    assert len(lines) == 2
    assert "num_warmup_steps 10000" in lines[0] and "num_train_steps 400" in lines[0]
    assert "learning_rate 0.0001" in lines[0] and "highest it gets is 1e-06 (at step 200)" in lines[0]
    assert '"num_warmup_steps": 40' in lines[0]
    # The published save_checkpoints_steps (10,000) is longer than the run.
    assert "save_checkpoints_steps 10000" in lines[1] and "restarts from step 0" in lines[1]


def test_a_schedule_that_reaches_its_peak_says_nothing(tmp_path):
    config = PretrainingConfig(str(tmp_path / "model"), str(tmp_path), num_train_steps=400, num_warmup_steps=40,
                               save_checkpoints_steps=100)
    assert schedule_warnings(config) == []
    late = PretrainingConfig(str(tmp_path / "model"), str(tmp_path), num_train_steps=400, num_warmup_steps=300,
                             save_checkpoints_steps=100)
    assert "never reaches its peak" in schedule_warnings(late)[0]  # warmup ends after decay took over
