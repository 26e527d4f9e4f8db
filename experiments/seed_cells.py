"""A table cell over several seeds: the median with its spread, then mean ± sample std, and how many runs.

experiments/task_table.py and experiments/continued_results.py write their cells with these.
"""
import statistics


def spread(values):
    """(kind, low, high): the min-max range up to 5 seeds, the interquartile range past 5
    (``statistics.quantiles``' inclusive method: the quartiles interpolated between seeds)."""
    if len(values) > 5:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        return "IQR", q1, q3
    return "range", min(values), max(values)


def cell(values):
    """'median [low–high] · mean ± std' over the seeds (sample std); one seed: just the value.

    The median and its spread come first: Google's published ELECTRA scores are medians over
    10 seeds, and a mean over a few seeds hides a seed that diverged."""
    if len(values) == 1:
        return f"{values[0]:.2f}"
    _, low, high = spread(values)
    return (f"{statistics.median(values):.2f} [{low:.2f}–{high:.2f}] · "
            f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}")


def runs_note(count, collapsed):
    """'(n=5)', '(n=5, 2 collapsed)', '(n=1, all collapsed)': how many runs a cell holds and how many of
    them collapsed (finetune/collapse.py): their scores stay in the cell, named for what they are."""
    if not collapsed:
        return f"(n={count})"
    return f"(n={count}, {'all' if collapsed == count else collapsed} collapsed)"
