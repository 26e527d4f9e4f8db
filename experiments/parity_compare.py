"""Comparing two sides' ``step_<label>.npz`` (experiments/parity_step.py): relative differences per tensor.

A tensor's difference is max |a - b| over max |a| (with a floor per kind of tensor, so rounding
noise in a tensor that is zero but for it does not count as a difference). Variables whose
gradient is only rounding noise (the attention key biases: softmax ignores a constant added to
every score) are compared on the first batch and left out after the steps, where Adam turns
that noise into full-size updates.
"""
import numpy as np

GROUPS = ("mlm_loss", "disc_loss", "total_loss")
NOISE_FRACTION = 1e-9


def relative_difference(a, b, floor=0.0):
    """max |a - b| over max(max |a|, floor): scale-free, so one threshold fits every tensor.

    ``floor`` keeps tensors that are zero but for rounding (the key biases' gradients: softmax
    ignores a constant added to every score) from counting their rounding noise as a difference.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    if not a.size:
        return 0.0
    scale = max(np.abs(a).max(), floor)
    diff = np.abs(a - b).max()
    return float(diff / scale) if scale else float(diff)


def kind(name):
    """Tensors compared against one shared floor: a gradient group, parameters, or one Adam slot."""
    for suffix in ("/adam_m", "/adam_v"):
        if name.endswith(suffix):
            return suffix
    return name.split("/")[1] if name.startswith("grad/") else "param"


def floors(arrays, names, fraction=1e-6):
    """Per kind, ``fraction`` of the largest magnitude of any tensor of that kind."""
    largest = {}
    for name in names:
        largest[kind(name)] = max(largest.get(kind(name), 0.0), float(np.abs(arrays[name]).max(initial=0.0)))
    return {k: fraction * v for k, v in largest.items()}


def compare(path_a, path_b):
    """Per quantity the relative difference between the two sides; names on one side only are listed."""
    a, b = np.load(path_a), np.load(path_b)
    result = {"only_a": sorted(set(a.files) - set(b.files)), "only_b": sorted(set(b.files) - set(a.files)),
              "mask_counts": {"a": a["own_mask_counts"].tolist(), "b": b["own_mask_counts"].tolist()},
              "first": {}, "grad": {g: {} for g in GROUPS}, "steps": []}
    for group in GROUPS:
        result["first"][group] = {"a": float(a[f"first/{group}"]), "b": float(b[f"first/{group}"]),
                                  "relative": relative_difference(a[f"first/{group}"], b[f"first/{group}"])}
    grads = sorted(k for k in set(a.files) & set(b.files) if k.startswith("grad/"))
    floor = floors(a, grads)
    # Variables the loss does not depend on but for rounding (the attention key biases, whose
    # gradients are ~1e-11 of the largest where every other is above ~1e-7): Adam turns that
    # noise into full-size steps, so after a step they are compared to nothing.
    noise = floors(a, grads, NOISE_FRACTION)["total_loss"]
    result["noise_only"] = sorted(k.split("/", 2)[2] for k in grads if k.startswith("grad/total_loss/")
                                  and np.abs(a[k]).max() <= noise)
    for key in grads:
        _, group, name = key.split("/", 2)
        result["grad"][group][name] = relative_difference(a[key], b[key], floor[kind(key)])
    s = 0
    while f"step{s}/losses" in a.files and f"step{s}/losses" in b.files:
        prefix = f"step{s}/var/"
        shared = sorted(k for k in set(a.files) & set(b.files) if k.startswith(prefix))
        floor = floors(a, shared)
        rates = {f"lr_{side}": float(x[f"step{s}/lr"]) if f"step{s}/lr" in x.files else None
                 for side, x in (("a", a), ("b", b))}
        result["steps"].append({**rates, "losses_a": a[f"step{s}/losses"].tolist(),
                                "losses_b": b[f"step{s}/losses"].tolist(),
                                "losses_relative": relative_difference(a[f"step{s}/losses"], b[f"step{s}/losses"]),
                                "variables": {k[len(prefix):]: relative_difference(a[k], b[k], floor[kind(k)])
                                              for k in shared}})
        s += 1
    return result


def worst(differences):
    """(name, value) of the largest entry of a name -> relative difference dict."""
    name = max(differences, key=differences.get) if differences else None
    return name, (differences[name] if name else 0.0)


def summary(result, tolerance, grad_tolerance=None):
    lines = []
    counts = result["mask_counts"]
    same = counts["a"] == counts["b"]
    lines.append(f"own masking, positions per example on the first batch: {'same' if same else 'differ'}"
                 f" (a {counts['a']}, b {counts['b']})")
    for group in GROUPS:
        first = result["first"][group]
        name, value = worst(result["grad"][group])
        lines.append(f"{group}: a {first['a']:.7g} b {first['b']:.7g} (relative {first['relative']:.2e}); "
                     f"gradients of {len(result['grad'][group])} variables, worst {value:.2e} ({name})")
    noise_only = set(result["noise_only"])
    if noise_only:
        lines.append(f"gradient only rounding noise, left out after steps: {', '.join(sorted(noise_only))}")
    for s, step in enumerate(result["steps"]):
        name, value = worst(counted(step, noise_only))
        rate = lambda x: "-" if x is None else f"{x:.6g}"  # noqa: E731
        rates = f"learning rate a {rate(step.get('lr_a'))} b {rate(step.get('lr_b'))}; "
        lines.append(f"after step {s}: {rates}losses relative {step['losses_relative']:.2e}; "
                     f"{len(counted(step, noise_only))} variables (with Adam slots), worst {value:.2e} ({name})")
    for side in ("only_a", "only_b"):
        if result[side]:
            lines.append(f"{side}: {', '.join(result[side][:10])}")
    within = f"{tolerance:g} relative" + (f", gradients {grad_tolerance:g}" if grad_tolerance is not None else "")
    lines.append(f"verdict: {'equal' if equal(result, tolerance, grad_tolerance) else 'DIFFERENT'} within {within}")
    return lines


def counted(step, noise_only):
    """A step's variable differences without the noise-only variables and their Adam slots."""
    return {k: v for k, v in step["variables"].items() if k.rsplit("/adam_", 1)[0] not in noise_only}


def equal(result, tolerance, grad_tolerance=None):
    """Every difference within ``tolerance``, the gradients within ``grad_tolerance`` if given (issue 29's
    proof: losses, weights and Adam slots 1e-5, gradients 1e-4)."""
    values = [result["first"][g]["relative"] for g in GROUPS]
    grads = [v for g in GROUPS for v in result["grad"][g].values()]
    for step in result["steps"]:
        values += [step["losses_relative"], *counted(step, set(result["noise_only"])).values()]
    grad_tolerance = tolerance if grad_tolerance is None else grad_tolerance
    return (not result["only_a"] and not result["only_b"] and bool(result["steps"]) and max(values) <= tolerance
            and max(grads, default=0.0) <= grad_tolerance)
