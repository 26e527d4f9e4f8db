"""A NaN or infinite loss, or weights gone non-finite, stop training with one line naming the
step, before any checkpoint holds them; the last good checkpoint resumes with a lower rate."""
import types

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from configure_pretraining import PretrainingConfig
from pretrain import guards, training
from pretrain.tf_backend.hooks import FiniteWeightsListener, FreeSpaceListener, NonFiniteLossHook, train_kwargs

from .conftest import tiny_hparams


def toy_config(model_dir, distribution="none"):
    return types.SimpleNamespace(model_dir=str(model_dir), learning_rate=0.1, distribution=distribution)


def toy_estimator(model_dir, poison_loss_at=None, poison_grads_at=None, poison=np.nan):
    """One weight fitted to 1.0; from global step ``poison_*_at`` on, the loss (and so the
    update) or only the gradient (the loss stays finite) becomes ``poison``."""

    def model_fn(features, labels, mode):
        step = tf.train.get_or_create_global_step()
        w = tf.get_variable("w", [], initializer=tf.zeros_initializer())
        loss = tf.square(w - 1.0)
        if poison_loss_at is not None:
            # A product, not where(cond, poison * loss, loss): where's unused branch would put
            # NaN into the gradient from the first step.
            loss = loss * tf.where(step >= poison_loss_at, poison, 1.0)
        if poison_grads_at is not None:
            @tf.custom_gradient
            def poisoned_gradient(x):
                return x, lambda dy: dy * tf.where(step >= poison_grads_at, poison, 1.0)
            loss = poisoned_gradient(loss)
        train_op = tf.train.GradientDescentOptimizer(0.1).minimize(loss, global_step=step)
        return tf.estimator.EstimatorSpec(mode, loss=loss, train_op=train_op)

    run_config = tf.estimator.RunConfig(model_dir=str(model_dir), save_checkpoints_steps=3, log_step_count_steps=None)
    return tf.estimator.Estimator(model_fn, config=run_config)


def input_fn():
    return tf.data.Dataset.from_tensors(({"x": 0.0}, 0.0)).repeat()


def saved_steps(model_dir):
    state = tf.train.get_checkpoint_state(str(model_dir))
    return [int(p.rsplit("-", 1)[1]) for p in state.all_model_checkpoint_paths]


@pytest.mark.parametrize("poison", [np.nan, np.inf])
def test_non_finite_loss_stops_at_its_step_and_keeps_the_last_good_checkpoint(tmp_path, poison):
    estimator = toy_estimator(tmp_path, poison_loss_at=4, poison=poison)  # train step 5
    with pytest.raises(guards.NonFiniteTrainingError) as e:
        estimator.train(input_fn, max_steps=10, **train_kwargs(toy_config(tmp_path), "bf16_cpu"))
    message = str(e.value)
    assert message.startswith(f"loss is {float(poison)} at train step 5; stopped without saving, the last good "
                              f"checkpoint model.ckpt-3 is kept in {tmp_path}") and "\n" not in message
    assert '"learning_rate": 0.05' in message
    assert saved_steps(tmp_path) == [0, 3]
    assert np.isfinite(tf.train.load_variable(str(tmp_path), "w"))


def test_weights_poisoned_at_a_save_step_are_never_saved(tmp_path):
    # The loss of train step 6 is finite but its update makes w NaN, and step 6 is a save
    # step: the Estimator's saver runs before any loss check and would write NaN weights.
    estimator = toy_estimator(tmp_path, poison_grads_at=5)
    with pytest.raises(guards.NonFiniteTrainingError, match=r"^the weights became NaN or infinite at train step 6; "
                                                            r".*model\.ckpt-3 is kept"):
        estimator.train(input_fn, max_steps=10, **train_kwargs(toy_config(tmp_path), "fp32"))
    assert saved_steps(tmp_path) == [0, 3]


def test_weights_poisoned_at_the_last_step_are_not_saved_by_the_final_save(tmp_path):
    estimator = toy_estimator(tmp_path, poison_grads_at=4)  # train step 5 = max_steps: only the final save
    with pytest.raises(guards.NonFiniteTrainingError, match="at train step 5;"):
        estimator.train(input_fn, max_steps=5, **train_kwargs(toy_config(tmp_path), "fp32"))
    assert saved_steps(tmp_path) == [0, 3]


def test_fp16_keeps_its_own_skipping_and_multi_worker_gets_the_loss_check():
    fp16 = train_kwargs(toy_config("m"), "fp16_gpu")
    assert fp16["hooks"] == [] and [type(x) for x in fp16["saving_listeners"]] == [
        FiniteWeightsListener, FreeSpaceListener]
    multi = train_kwargs(toy_config("m", "multi_worker"), "fp32")
    assert [type(h) for h in multi["hooks"]] == [NonFiniteLossHook] and "saving_listeners" not in multi


@pytest.mark.slow  # about 30 s alone, more on a busy machine: two tiny pretraining runs
def test_pretraining_stops_on_a_nan_loss_and_resumes_with_a_lower_learning_rate(tmp_path, tiny_data, monkeypatch):
    model_dir = str(tmp_path / "model")
    hparams = tiny_hparams(num_train_steps=8, iterations_per_loop=2, save_checkpoints_steps=3)
    original = training.PretrainingModel

    class Diverging(original):
        """The real model whose loss turns NaN from train step 5 on."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            step = tf.train.get_or_create_global_step()
            self.total_loss = self.total_loss * tf.where(step >= 4, np.float32(np.nan), np.float32(1.0))

    monkeypatch.setattr(training, "PretrainingModel", Diverging)
    with pytest.raises(guards.NonFiniteTrainingError) as e:
        training.train_or_eval(PretrainingConfig(model_dir, tiny_data, **hparams))
    assert str(e.value).startswith("loss is nan at train step 5; stopped without saving, the last good checkpoint "
                                   "model.ckpt-3 is kept")
    assert tf.train.latest_checkpoint(model_dir).endswith("model.ckpt-3")
    reader = tf.train.load_checkpoint(model_dir)
    assert all(np.isfinite(reader.get_tensor(name)).all() for name in reader.get_variable_to_shape_map()
               if reader.get_variable_to_dtype_map()[name].is_floating)

    monkeypatch.setattr(training, "PretrainingModel", original)
    training.train_or_eval(PretrainingConfig(model_dir, tiny_data, **dict(hparams, learning_rate=2.5e-4)))
    assert tf.train.load_variable(model_dir, "global_step") == 8
