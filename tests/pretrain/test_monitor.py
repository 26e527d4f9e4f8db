"""The collapse warning's rule, on the figures real runs produced (docs/pretraining.md)."""
from pretrain import monitor


def test_constant_output_is_a_collapse():
    assert "same for every token" in monitor.diagnose(auc=0.5, recall=0.0, prob_std=3e-7)


def test_the_collapsed_experiment_run_is_flagged():
    # Issue 13's rerun, steps 300-850: real-token AUC ~0.52, recall 0, spread still above 1e-3.
    assert "barely ranks" in monitor.diagnose(auc=0.526, recall=0.001, prob_std=0.01)


def test_a_learning_discriminator_is_not_flagged():
    assert monitor.diagnose(auc=0.88, recall=0.31, prob_std=0.15) is None
    # Ranking well but still cautious is learning, not collapse.
    assert monitor.diagnose(auc=0.85, recall=0.0, prob_std=0.05) is None


def test_checks_start_after_warmup_but_by_step_1000():
    assert monitor.check_start(10000) == 1000
    assert monitor.check_start(300) == 300
    assert monitor.check_start(20) == 200


def test_monitor_warns_only_after_the_start_step_on_window_means():
    lines = []
    monitor_ = monitor.CollapseMonitor(num_warmup_steps=200, every=100, printer=lines.append)

    def figures(auc):
        return {"disc_auc_real": auc, "disc_recall_real": 0.0, "disc_prob_std_real": 0.01}

    for step in range(1, 301):  # collapsed throughout; judged at steps 200 and 300 only
        monitor_.update(step, figures(0.52))
    assert len(lines) == 2 and lines[0].startswith("WARNING step 200:")
    assert "\"temperature\": 2.0" in lines[0]  # the retry the pilots found to work
    for step in range(301, 401):  # recovered
        monitor_.update(step, figures(0.9))
    assert len(lines) == 2


def test_the_tf_hook_numbers_steps_as_the_monitor_does():
    from pretrain.tf_backend.hooks import CollapseMonitorHook

    lines = []
    hook = CollapseMonitorHook({"disc_auc_real": 0, "disc_recall_real": 0, "disc_prob_std_real": 0},
                               num_warmup_steps=200, every=100, printer=lines.append)

    class Values:
        def __init__(self, step, auc):  # global_step as fetched before the step's increment
            self.results = {"step": step, "disc_auc_real": auc, "disc_recall_real": 0.0, "disc_prob_std_real": 0.01}

    for step in range(0, 200):
        hook.after_run(None, Values(step, 0.52))
    assert len(lines) == 1 and lines[0].startswith("WARNING step 200:")
