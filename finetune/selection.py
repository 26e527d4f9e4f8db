"""Which evaluations become which reported number: the published protocol's and ours.

Three numbers come out of one run, each named in ``results.json`` and in the log:

- ``published``: the number as the published code computes it. Dialog-KoELECTRA evaluates
  every ``logging_steps`` on the test set when ``evaluate_test_during_training`` is true (or
  when there is no dev file), on dev otherwise, and reports the best score over those
  evaluations (``best_score``, also NNI's final result). Only those scheduled evaluations
  count, not the extra one we run at the end of training.
- ``best``: the model kept in ``best_model/``, selected on dev (on test when there is no dev
  file), over every evaluation including the end one. Its dev and test scores from the
  final evaluation are ``dev_selected`` when both files exist: the honest held-out figure.
- ``checkpoints`` (``eval_all_checkpoints``): KoELECTRA's protocol, every ``checkpoint-N``
  scored on test and the best of them; the same as ``published`` when ``logging_steps`` equals
  ``save_steps``, as in every published YAML. With no test file (KorQuAD's YAML) they are
  scored on dev, the file KoELECTRA's run_squad scores them on (its ``predict_file``).
"""
PUBLISHED_RULE = ("best {metric} over the evaluations every logging_steps on {split} "
                  "(Dialog-KoELECTRA's best_score; KoELECTRA's best checkpoint when save_steps == logging_steps)")


class Selection:
    """Running best scores; ``state()`` / ``restore()`` carry them across a resume."""

    def __init__(self, config, split_names, metric):
        self.metric = metric
        has_dev, has_test = "dev" in split_names, "test" in split_names
        self.selection_split = "dev" if has_dev else ("test" if has_test else None)
        if has_test and (config.evaluate_test_during_training or not has_dev):
            self.published_split = "test"
        else:
            self.published_split = self.selection_split
        if config.eval_all_checkpoints:
            self.checkpoint_split = "test" if has_test else ("dev" if has_dev else None)
        else:
            self.checkpoint_split = None
        self.best = None
        self.published = None
        self.checkpoints = {}  # step -> metrics of checkpoint-<step> on checkpoint_split

    def splits_during_training(self):
        """The splits an evaluation during training scores, selection split first."""
        names = [self.selection_split, self.published_split]
        return [n for i, n in enumerate(names) if n and n not in names[:i]]

    def offer_best(self, step, metrics):
        """Record an evaluation of the selection split; True when it is the new best."""
        score = metrics[self.metric]
        if self.best is None or score > self.best["score"]:
            self.best = {"step": step, "split": self.selection_split, "score": score, "metrics": metrics}
            return True
        return False

    def offer_published(self, step, metrics):
        score = metrics[self.metric]
        if self.published is None or score > self.published["score"]:
            self.published = {"step": step, "split": self.published_split, "score": score, "metrics": metrics,
                              "rule": PUBLISHED_RULE.format(metric=self.metric, split=self.published_split)}

    def offer_checkpoint(self, step, metrics):
        self.checkpoints[int(step)] = metrics

    def checkpoint_record(self):
        if not self.checkpoints:
            return None
        steps = sorted(self.checkpoints)
        best = max(steps, key=lambda s: (self.checkpoints[s][self.metric], -s))
        return {"split": self.checkpoint_split, "evaluations": [{"step": s, "metrics": self.checkpoints[s]} for s in steps],
                "best": {"step": best, "score": self.checkpoints[best][self.metric]}}

    def protected_steps(self):
        """Checkpoints the keep-limit must not delete: the best and the published best."""
        return {r["step"] for r in (self.best, self.published) if r}

    def state(self):
        return {"best": self.best, "published": self.published,
                "checkpoints": {str(k): v for k, v in self.checkpoints.items()}}

    def restore(self, state):
        self.best, self.published = state.get("best"), state.get("published")
        self.checkpoints = {int(k): v for k, v in (state.get("checkpoints") or {}).items()}


def summary_lines(results):
    """The log's closing lines: each reported number under its name."""
    metric = results.get("primary_metric")
    lines = []
    published = results.get("published")
    if published:
        lines.append(f"published protocol: {published['split']} {metric} = {published['score']:.2f} "
                     f"(the best of the evaluations every logging_steps, at step {published['step']})")
    chosen = results.get("dev_selected")
    if chosen:
        lines.append(f"dev-selected model (step {chosen['step']}): dev {metric} = {chosen['dev'][metric]:.2f}, "
                     f"test {metric} = {chosen['test'][metric]:.2f}")
    checkpoints = results.get("checkpoints")
    if checkpoints:
        best = checkpoints["best"]
        lines.append(f"all checkpoints on {checkpoints['split']}: best {metric} = {best['score']:.2f} "
                     f"at checkpoint-{best['step']} ({len(checkpoints['evaluations'])} checkpoints)")
    best = results.get("best")
    if best and "score" in best:
        lines.append(f"best {best['split']} {metric} = {best['score']:.2f} at step {best['step']} (best_model/)")
    for split, notes in (results.get("inputs") or {}).items():
        if "held_out_of" in notes:
            held = notes["examples_held_out"]
            count = "the" if notes["evaluated_examples"] == held else f"{notes['evaluated_examples']:,} of the"
            lines.append(f"{split}: {count} {held:,} examples held out of {notes['held_out_of']} "
                         f"(dev_split {notes['dev_split']}, split_seed {notes['split_seed']})")
        elif "trained_examples" in notes:
            left = notes.get("examples_left_for_training")
            capped = " (max_train_examples)" if notes["trained_examples"] < (left or notes["examples_in_file"]) else ""
            lines.append(f"trained on {notes['trained_examples']:,} of the {left or notes['examples_in_file']:,} "
                         f"examples of {split}" + (" left by dev_split" if left else "") + capped)
        elif "evaluated_examples" in notes:
            lines.append(f"{split} scores above are on {notes['evaluated_examples']:,} of its "
                         f"{notes['examples_in_file']:,} examples (max_eval_examples)")
    return lines
