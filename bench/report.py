"""Writes one benchmark's section of docs/benchmarks.md, leaving the other sections alone.

Each benchmark owns the text between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``;
a lock file serialises benchmarks that finish at the same time.
"""
import os
import platform
import re
import subprocess
from importlib import metadata

from filelock import FileLock

from util.files import atomic_write

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORT = os.path.join(ROOT, "docs", "benchmarks.md")
HEADER = (
    "# Benchmarks\n\n"
    "Every figure here was measured by the command printed with it, as a ratio against a\n"
    "baseline run in the same process, on the machine described in its section. Regenerate\n"
    "a section by rerunning its command.\n"
)


def machine_description():
    """Cores, CPU model and flags that matter for the kernels, and library versions."""
    cpu = platform.processor() or "unknown CPU"
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        model = re.search(r"model name\s*:\s*(.*)", text)
        cpu = model.group(1) if model else cpu
        found = set(re.search(r"flags\s*:\s*(.*)", text).group(1).split())
        flags = " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in found)
    except (OSError, AttributeError):
        pass
    # From the installed packages' metadata: importing TensorFlow for its version costs seconds,
    # and a TF-free install has none to report.
    versions = []
    for module, distributions in (("tensorflow", ("tensorflow", "tensorflow-cpu")), ("torch", ("torch",)),
                                  ("transformers", ("transformers",)), ("tokenizers", ("tokenizers",)),
                                  ("onnxruntime", ("onnxruntime", "onnxruntime-gpu"))):
        for name in distributions:
            try:
                versions.append(f"{module} {metadata.version(name)}")
                break
            except metadata.PackageNotFoundError:
                continue
    return f"{os.cpu_count()} cores, {cpu} ({flags}); Python {platform.python_version()}; " + ", ".join(versions)


def load_average():
    """How busy the machine was: benchmarks state it measured rather than assert it."""
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def git_revision():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except Exception:
        return "unknown"


def write_section(name, title, command, body):
    """Replace (or append) the section ``name`` of docs/benchmarks.md.

    ``body`` is Markdown with the figures; the command and machine are added here so
    every section says how to reproduce it.
    """
    section = (
        f"<!-- bench:{name} -->\n## {title}\n\n"
        f"Command: `{command}`  \n"
        f"Machine: {machine_description()}  \n"
        f"Load average when written (1 / 5 / 15 min): {load_average()}  \n"
        f"Revision: {git_revision()}\n\n{body.rstrip()}\n<!-- /bench:{name} -->\n"
    )
    os.makedirs(os.path.dirname(REPORT), exist_ok=True)
    with FileLock(REPORT + ".lock"):
        text = open(REPORT, encoding="utf-8").read() if os.path.exists(REPORT) else HEADER
        pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->\n", re.S)
        if pattern.search(text):
            text = pattern.sub(lambda _: section, text)
        else:
            text = text.rstrip() + "\n\n" + section
        with atomic_write(REPORT) as f:
            f.write(text)
    print(section)
