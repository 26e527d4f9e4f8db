"""docs/pretraining_parity.md from the parity runs' own files (experiments/upstream_parity.py).

    .venv/bin/python -m experiments.parity_report --work data/parity

Every run's metrics (both evaluations, training time, loss curve) and the other sections' lines
are kept in docs/pretraining_parity_runs.json beside the page, committed: the runs' directories
are git-ignored, and the page is regenerated from that record alone when they are gone. Runs
found under ``--work`` replace the record's of the same system, generator and seed; the others
are kept.
"""
import argparse
import glob
import json
import math
import os
import re
import statistics

from experiments.make_results import scalars
from util.files import atomic_write, write_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIGURE = os.path.join("figures", "parity_loss.png")
RUNS_JSON = "pretraining_parity_runs.json"  # beside the page
SYSTEM_COLORS = {"ours": "tab:blue", "ourswr": "tab:green", "torch": "tab:red", "torchwr": "tab:purple",
                 "upstream": "tab:orange"}
# Lower is better for these; the rest are accuracies/AUCs.
LOSSES = ("disc_loss", "masked_lm_loss")


def read_results(path):
    with open(path, encoding="utf-8") as f:
        return {k.strip(): float(v) for k, v in (line.split("=", 1) for line in f if "=" in line)}


def collect(work):
    """{(system, generator): [{"results", "curve", "seconds", "seed", "upstream_masking"}, ...]} from
    finished runs; "upstream_masking" is the second evaluation's results (None where it did not run)."""
    from experiments.upstream_parity import UPSTREAM_MASKING_EVAL

    runs = {}
    for results in sorted(glob.glob(os.path.join(work, "*_*_seed*", "results", "unsup_results.txt"))):
        model_dir = os.path.dirname(os.path.dirname(results))
        system, generator, seed = re.match(r"(\w+?)_(\w+)_seed(\d+)$", os.path.basename(model_dir)).groups()
        series = scalars(model_dir)
        # The Estimator's "loss"; the torch backend writes the same total loss as "loss/total" only.
        curve = [list(point) for point in series.get("loss") or series.get("loss/total", [])]
        seconds_file = os.path.join(model_dir, "train_seconds.txt")
        seconds = float(open(seconds_file).read()) if os.path.exists(seconds_file) else None
        crossed = os.path.join(model_dir, UPSTREAM_MASKING_EVAL, "results", "unsup_results.txt")
        config_file = os.path.join(model_dir, "pretrain_config.json")
        steps = json.load(open(config_file, encoding="utf-8")).get("num_train_steps") \
            if os.path.exists(config_file) else None
        runs.setdefault((system, generator), []).append(
            {"results": read_results(results), "curve": curve, "seconds": seconds, "seed": int(seed),
             "upstream_masking": read_results(crossed) if os.path.exists(crossed) else None, "steps": steps})
    return runs


def merged_record(work, path):
    """The record at ``path`` (if any) with the runs and sections found under ``work`` in place of its own."""
    record = {"runs": [], "sections": {}}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    found = collect(work) if work and os.path.isdir(work) else {}
    fresh = {(system, generator, run["seed"]): dict(run, system=system, generator=generator)
             for (system, generator), runs in found.items() for run in runs}
    kept = [run for run in record["runs"] if (run["system"], run["generator"], run["seed"]) not in fresh]
    order = {name: i for i, name in enumerate(SYSTEM_COLORS)}
    record["runs"] = sorted(kept + list(fresh.values()),
                            key=lambda r: (r["generator"], order.get(r["system"], len(order)), r["system"], r["seed"]))
    if work and os.path.isdir(work):
        for name, lines in (("init", compare_init(work)), ("step", step_section(work)),
                            ("dropout", dropout_section(work))):
            if lines:
                record["sections"][name] = lines
    return record


def grouped(record):
    """{(system, generator): [run, ...]} of a record, as collect() returns them."""
    runs = {}
    for run in record["runs"]:
        runs.setdefault((run["system"], run["generator"]), []).append(run)
    return runs


def trained_steps(record):
    """num_train_steps as the runs were given it (--steps may differ from HPARAMS' default); all the
    values, comma-separated, should the record's runs disagree."""
    steps = sorted({run["steps"] for run in record["runs"] if run.get("steps")})
    return None if not steps else steps[0] if len(steps) == 1 else ", ".join(map(str, steps))


def compare_init(work, tolerance=0.05):
    """Lines describing ``<work>/init_{ours,upstream}.json`` (experiments/parity_init.py): the
    variables only one graph has, and those whose shape, mean or std differ. Empty without them."""
    paths = [os.path.join(work, f"init_{system}.json") for system in ("ours", "upstream")]
    if not all(os.path.isfile(p) for p in paths):
        return []
    ours, upstream = (json.load(open(p, encoding="utf-8")) for p in paths)
    differences = [f"- only in ours: `{name}`" for name in sorted(set(ours) - set(upstream))]
    differences += [f"- only in upstream's: `{name}`" for name in sorted(set(upstream) - set(ours))]
    for name in sorted(set(ours) & set(upstream)):
        a, b = ours[name], upstream[name]
        # Two random draws differ: the std by ~1/sqrt(2n) of itself (small tensors need more than
        # the tolerance), the mean by a sliver of the spread. A wrong initialiser moves one by far more.
        n = max(1, math.prod(b["shape"]))
        std_off = abs(a["std"] - b["std"]) > max(tolerance, 5 / math.sqrt(2 * n)) * max(b["std"], 1e-12)
        mean_off = abs(a["mean"] - b["mean"]) > max(tolerance, 5 / math.sqrt(n)) * max(a["std"], b["std"]) + 1e-6
        if a["shape"] != b["shape"] or std_off or mean_off:
            differences.append(f"- `{name}`: ours {a['shape']} mean {a['mean']:.4f} std {a['std']:.4f}, "
                               f"upstream {b['shape']} mean {b['mean']:.4f} std {b['std']:.4f}")
    head = (f"{len(set(ours) & set(upstream))} variables in both graphs (ours {len(ours)}, upstream {len(upstream)}), "
            f"built and initialised by each system's own code (`python -m experiments.parity_init`); "
            f"same shape, std within {tolerance:.0%} (more for tensors too small to estimate it) and "
            f"mean within {tolerance:.0%} of the std (likewise) of upstream's unless listed")
    return ["## Initial variables", "", head + (":" if differences else ": none differs."), "", *differences]


def step_section(work):
    """Lines describing ``<work>/step*/parity_step.json`` (experiments/parity_step.py): one fixed batch
    and a few optimizer steps through both graphs from one checkpoint. Empty without them."""
    from experiments.parity_step import counted, worst

    rows = []
    for path in sorted(glob.glob(os.path.join(work, "step*", "parity_step.json"))):
        with open(path, encoding="utf-8") as f:
            r = json.load(f)
        name, value = worst({f"{g}: {v}": x for g in r["grad"] for v, x in r["grad"][g].items()})
        last = r["steps"][-1]
        step_name, step_value = worst(counted(last, set(r["noise_only"])))
        side = "learning rate read one step ahead" if r.get("ours_lr_ahead") else "as shipped"
        if "torch" in (r["a"], r["b"]):  # the torch side's rates (parity_step --torch_lr)
            side = {"ahead": "torch's learning rate read one step ahead",
                    "as_run": "torch at the rates the TF side's updates read"}.get(r.get("torch_lr"), side)
        tolerance = r.get("tolerance", 1e-4)
        bound = f"{tolerance:.0e}" + (f", gradients {r['grad_tolerance']:.0e}" if r.get("grad_tolerance") else "")
        rows.append(f"| {r['a']} ({side}) vs {r['b']} | " + " / ".join(
            f"{r['first'][g]['a']:.6g} vs {r['first'][g]['b']:.6g}" for g in ("mlm_loss", "disc_loss", "total_loss"))
            + f" | {value:.1e} (`{name}`) | {len(r['steps'])}: {step_value:.1e} (`{step_name}`) | "
            + ("equal" if r["equal"] else "**different**") + f" ({bound}) |")
    if not rows:
        return []
    return ["## One fixed batch, then a few steps, from one checkpoint", "",
            "`python -m experiments.parity_step` (see its docstring): both graphs restored from one checkpoint, "
            "dropout off, the same masks, [MASK]ed inputs and generator samples fed to both; AdamW with "
            "upstream's weight-decay exclusions and clipping, warmup 2 and linear decay to 0 at step 6, so the "
            "steps cross warmup, decay and its end value. Relative differences are max |a - b| over max |a| "
            "per tensor; the attention key biases, whose gradient is rounding noise (softmax ignores them), "
            "are left out after the steps.", "",
            "| comparison | first batch: MLM / disc / total loss | worst gradient difference (of 3 losses x every "
            "variable) | steps: worst variable or Adam slot difference after the last | verdict (relative bound) |",
            "|---|---|---|---|---|", *rows, "",
            "Equal but for the learning rate, upstream's read one step ahead: the graphs do not explain a gap in "
            "the tables above; docs/pretraining.md (Learning parity) says what is left and what was measured."]


def dropout_section(work):
    """Lines describing ``<work>/dropout*/parity_dropout.json`` (experiments/parity_dropout.py). Empty without it."""
    rows = []
    for path in sorted(glob.glob(os.path.join(work, "dropout*", "parity_dropout.json"))):
        with open(path, encoding="utf-8") as f:
            r = json.load(f)
        masks = {side: sum(n for _, n in r["census"][side]) for side in ("a", "b")}
        rows.append(f"| {r['a']} vs {r['b']} | {masks['a']} vs {masks['b']}: "
                    + ("same scopes and shapes" if r["census_equal"] else "**different**") + " | "
                    + " | ".join(f"{x['a'][0]:.5f} ± {x['a'][1]:.5f} vs {x['b'][0]:.5f} ± {x['b'][1]:.5f} "
                                 f"(z {x['welch_z']:+.2f}, {x['draws']} draws)"
                                 for x in (r["losses"]["mlm_loss"], r["losses"]["disc_loss"])) + " |")
    if not rows:
        return []
    return ["## Dropout, from one checkpoint", "",
            "`python -m experiments.parity_dropout` (see its docstring): the fixed-batch comparison has dropout off, "
            "so this one builds both graphs with the runs' dropout (0.1), lists every dropout mask each draws "
            "(scope and shape), and evaluates the first fixed batch many times from one checkpoint, fresh dropout "
            "each time. z is Welch's for the difference of the means.", "",
            "| comparison | dropout masks | MLM loss (mean ± std) | discriminator loss (mean ± std) |",
            "|---|---|---|---|", *rows]


def seeds(n):
    return f"{n} seed" + ("" if n == 1 else "s")


def spread(values):
    mean = statistics.mean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, std


def welch_p(ours, upstream):
    """Two-sided Welch t-test p for the means, or None where it means nothing (a single seed, or no
    spread on either side)."""
    if len(ours) < 2 or len(upstream) < 2 or not (statistics.stdev(ours) or statistics.stdev(upstream)):
        return None
    from scipy.stats import ttest_ind

    return float(ttest_ind(ours, upstream, equal_var=False).pvalue)


def verdict(ours, upstream):
    if len(upstream) < 2:
        return "– (one upstream seed: no spread to judge by)"
    p = welch_p(ours, upstream)
    shown = "" if p is None else " (p < 0.01)" if p < 0.005 else f" (p {p:.2f})"
    return ("yes" if within(ours, upstream) else "**no**") + shown


def within(ours, upstream):
    """Ours counts as matching when its mean lies inside upstream's seed range widened by
    upstream's standard deviation (with 3 seeds the range alone is too narrow to mean much)."""
    _, std = spread(upstream)
    return min(upstream) - std <= statistics.mean(ours) <= max(upstream) + std


def plot(runs, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    generators = sorted({g for _, g in runs})
    fig, axes = plt.subplots(1, len(generators), figsize=(6 * len(generators), 4), squeeze=False)
    for ax, generator in zip(axes[0], generators):
        for system, color in SYSTEM_COLORS.items():
            for i, run in enumerate(runs.get((system, generator), [])):
                steps, values = zip(*run["curve"]) if run["curve"] else ((), ())
                ax.plot(steps, values, color=color, alpha=0.7, label=system if i == 0 else None)
        ax.set_title(f"{generator} generator: total training loss")
        ax.set_xlabel("step")
        ax.set_yscale("log")
        ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def metric_table(mine, upstream, metrics, key):
    """Markdown rows: each of our systems' mean ± std beside upstream's, and the verdict, for the
    results under ``key`` of each run."""
    lines = ["| metric | " + " | ".join(f"{s} (mean ± std)" for s, _ in mine) + " | upstream (mean ± std) | "
             + " | ".join(f"{s} within upstream's spread (Welch p)" for s, _ in mine) + " |",
             "|---|" + "---|" * (2 * len(mine) + 1)]
    for metric in metrics:
        b = [r[key][metric] for r in upstream if metric in r[key]]
        ours = [[r[key][metric] for r in rs if metric in r[key]] for _, rs in mine]
        if not b or not all(ours):
            continue
        lines.append(f"| {metric} | " + " | ".join("{:.4f} ± {:.4f}".format(*spread(a)) for a in ours)
                     + " | {:.4f} ± {:.4f} | ".format(*spread(b)) + " | ".join(verdict(a, b) for a in ours) + " |")
    return lines


def write_report(work, out_path, args=None, runs_json=None):
    """The page at ``out_path`` and its record (``runs_json``, default RUNS_JSON beside the page) from the
    runs under ``work`` and those the record already holds."""
    from experiments.upstream_parity import GENERATORS, HPARAMS, METRICS, OUR_SYSTEMS

    runs_json = runs_json or os.path.join(os.path.dirname(os.path.abspath(out_path)), RUNS_JSON)
    record = merged_record(work, runs_json)
    if not record["runs"]:  # never an empty page over a real one
        from util.errors import UserInputError

        raise UserInputError(f"no parity runs: none finished under --work {work} and {runs_json} holds none"
                             if work else f"{runs_json} holds no runs: pass --work with the runs' directory")
    runs = grouped(record)
    hparams = dict(HPARAMS, num_train_steps=trained_steps(record) or HPARAMS["num_train_steps"])
    plot(runs, os.path.join(os.path.dirname(out_path), FIGURE))
    shown_json = os.path.relpath(os.path.abspath(runs_json), ROOT) if os.path.abspath(runs_json).startswith(ROOT) \
        else os.path.basename(runs_json)
    lines = ["# Pre-training parity with upstream ELECTRA", "",
             "Generated by `python -m experiments.upstream_parity`; nothing here is typed by hand. Every run's "
             f"metrics are kept in `{shown_json}` (committed; the runs' directories are git-ignored): "
             "`python -m experiments.parity_report` rewrites this page from it alone, and `--work DIR` adds or "
             "replaces the runs found there.",
             "", "Both systems trained on the same TFRecords with the same hparams; every checkpoint, ours and "
             "upstream's, was then evaluated by our `run_pretraining.py` (upstream's variable names, so it reads "
             "both) on the same evaluation batches, with the same masks and generator samples (one seed, "
             "`EVAL_SEED`, for every checkpoint). Settings that did not run here are left out; docs/pretraining.md "
             "(Learning parity) says what was measured before. `*_real_tokens` metrics count the text's tokens only "
             "(padding, [CLS], [SEP] excluded); the others are upstream's definitions (its AUC counts padding).",
             "", f"Hparams: `{hparams}`; generator settings: "
             f"`{ {g: GENERATORS[g] for g in sorted({g for _, g in runs}) if g in GENERATORS} }`."
             + (" `ourswr` is ours with upstream's masking (`mask_with_replacement`: positions drawn with "
                "replacement, as upstream's `tf.random.categorical`), one of the two differences between the graphs "
                "(the other: upstream's train op reads the learning rate one step ahead, see the fixed-batch table)."
                if any(s == "ourswr" for s, _ in runs) else "")
             + (" `torch` is ours trained by the PyTorch backend (`run_pretraining.py --backend torch`, same hparams "
                "and seeds); its checkpoint is written as a TF one beside it (`convert/torch_tf.py`, the weights "
                "bit for bit) and evaluated by the same TF evaluation as the others."
                if any(s == "torch" for s, _ in runs) else "")
             + (" `torchwr` is `torch` with upstream's masking (`mask_with_replacement`), as `ourswr` is ours with it."
                if any(s == "torchwr" for s, _ in runs) else ""), ""]
    for generator in sorted({g for _, g in runs}):
        upstream = runs.get(("upstream", generator), [])
        # ourswr (upstream's masking, model/masking.py) gets its own columns when it ran.
        mine = [(s, runs[(s, generator)]) for s in OUR_SYSTEMS if (s, generator) in runs]
        lines += [f"## {generator} generator ("
                  + ", ".join(f"{seeds(len(r))} {s}" for s, r in mine + [("upstream", upstream)]) + ")", "",
                  *metric_table(mine, upstream, METRICS, "results")]
        times = {s: [r["seconds"] for r in rs if r["seconds"]] for s, rs in mine + [("upstream", upstream)]}
        if all(times.values()):
            lines += ["", "Per-run training wall time, median: " + ", ".join(
                f"{s} {statistics.median(t):.0f} s" for s, t in times.items()) + " (same machine, but not a speed "
                "comparison: runs shared it with other work, at different loads)."]
        crossed = [(s, [r for r in rs if r["upstream_masking"]]) for s, rs in mine]
        crossed_upstream = [r for r in upstream if r["upstream_masking"]]
        if crossed_upstream and all(rs for _, rs in crossed):
            lines += ["", f"### {generator} generator, the same checkpoints evaluated with upstream's masking ("
                      + ", ".join(f"{seeds(len(r))} {s}" for s, r in crossed + [("upstream", crossed_upstream)])
                      + ")", "",
                "The same evaluation batches, with the positions drawn as upstream draws them (with replacement, "
                "[CLS] and [SEP] counted; `mask_with_replacement`). Each discriminator meets the masking it trained "
                "with in one of the two tables: a gap that follows the masking is not a difference in learning.", "",
                *metric_table(crossed, crossed_upstream, METRICS, "upstream_masking")]
        lines.append("")
    for name in ("init", "step", "dropout"):
        section = record["sections"].get(name, [])
        lines += section + ([""] if section else [])
    lines += [f"![training loss, every seed]({FIGURE})", ""]
    write_json(runs_json, record)
    with atomic_write(out_path) as f:
        f.write("\n".join(lines))
    print(f"wrote {out_path} and {runs_json} ({len(record['runs'])} runs)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default=None, help="the runs' directory (default: none; the page from the record alone)")
    p.add_argument("--output", default=os.path.join(ROOT, "docs", "pretraining_parity.md"))
    p.add_argument("--runs_json", default=None, help=f"the record (default: {RUNS_JSON} beside --output)")
    args = p.parse_args()
    write_report(os.path.abspath(args.work) if args.work else None, args.output, args, args.runs_json)


if __name__ == "__main__":
    from util.errors import run_cli

    run_cli(main)

