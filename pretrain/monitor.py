"""Warns in the step log when the discriminator stops learning.

A collapsed ELECTRA discriminator gives every token the same probability (the replaced-token
prior, ~0.13): its loss settles at that prior's entropy and upstream's eval AUC still reads
~0.84 on short, padded examples, so nothing looks wrong until fine-tuning lands at chance.
``CollapseMonitor`` watches the batch figures over real tokens (padding, [CLS] and [SEP] excluded)
that ``PretrainingModel.real_token_stats`` computes, from the first checkpoint on.

No TensorFlow here: both backends feed ``CollapseMonitor`` after each step.
"""

# A collapsed run measured a spread below 1e-6; a healthy one 0.1 and more by step 300.
MIN_PROB_STD = 1e-3
# Below this AUC and recall the discriminator ranks replaced tokens barely above chance and
# never calls one replaced (the collapsed pilots of issue 13: AUC 0.55-0.56, recall 0).
MAX_STUCK_AUC = 0.7
MAX_STUCK_RECALL = 0.02


def check_start(num_warmup_steps):
    """The first step a collapse is judged at: after warmup, but never later than step 1000.

    The published configs warm up for 10k steps; a user about to spend days on a TPU must
    hear it within the first thousand. Before step 200 a healthy run can still sit near its prior.
    """
    return min(max(num_warmup_steps, 200), 1000)


def diagnose(auc, recall, prob_std):
    """The reason the discriminator looks collapsed, or None when it is learning."""
    if prob_std < MIN_PROB_STD:
        return f"its output is the same for every token (disc_prob_std_real {prob_std:.1e})"
    if auc < MAX_STUCK_AUC and recall < MAX_STUCK_RECALL:
        return (f"it barely ranks replaced tokens (disc_auc_real {auc:.3f}) and finds none of them "
                f"(disc_recall_real {recall:.3f})")
    return None


class CollapseMonitor:
    """Averages the real-token figures over each ``every`` steps and warns while they say collapse.

    Fed after every step with the number of steps done and that step's batch figures
    (``disc_auc_real``, ``disc_recall_real``, ``disc_prob_std_real``); returns the warning
    it printed, or None. The TF backend feeds it from a hook (pretrain/tf_backend/hooks.py).
    """

    KEYS = ("disc_auc_real", "disc_recall_real", "disc_prob_std_real")

    def __init__(self, num_warmup_steps, every, printer=None):
        self.start = check_start(num_warmup_steps)
        self.every = max(1, every)
        self.printer = printer or (lambda line: print(line, flush=True))
        self.sums, self.count = {}, 0
        self.warnings = 0

    def update(self, step, values):
        for name in self.KEYS:
            self.sums[name] = self.sums.get(name, 0.0) + float(values[name])
        self.count += 1
        if step % self.every:
            return None
        means = {k: v / self.count for k, v in self.sums.items()}
        first = step - self.count + 1
        self.sums, self.count = {}, 0
        if step < self.start:
            return None
        reason = diagnose(means["disc_auc_real"], means["disc_recall_real"], means["disc_prob_std_real"])
        if reason is None:
            return None
        self.warnings += 1
        line = (f"WARNING step {step}: the discriminator looks collapsed: {reason}, averaged over steps "
                f"{first}-{step} (the step log shows single batches). Collapsed pilots (real-token AUC 0.56) "
                "fine-tuned at chance, below random initialisation. Stop and retry with \"temperature\": 2.0, "
                "which kept the pilots learning where a lower learning_rate or a longer num_warmup_steps only "
                "delayed the fall (docs/pretraining.md, 'When the discriminator collapses').")
        self.printer(line)
        return line
