"""A real two-trial NNI experiment over the tiny model, on a loopback port, read back and stopped."""
import json
import os
import socket
import sys
import time

import pytest

from finetune import nni_glue

from finetune_helpers import ROOT, tiny_run_config


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_addresses(port):
    """Local addresses of sockets listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(name):
            continue
        with open(name) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(address)
    return found


def decoded(value):
    """NNI hands metrics and parameters back as JSON, sometimes encoded twice."""
    while isinstance(value, str):
        value = json.loads(value)
    return value


def test_outside_an_experiment_warns_and_uses_yaml(monkeypatch, caplog):
    monkeypatch.delenv("NNI_PLATFORM", raising=False)
    assert nni_glue.next_parameters() == {}
    assert "outside an NNI experiment" in caplog.text
    assert not nni_glue.NniReporter(True).enabled


SLOW_MANAGER = """
import http.server, sys, threading, time
from nni.experiment import launcher
from finetune import nni_glue

class CheckStatus(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/api/v1/nni/check-status"
        self.send_response(200 if ok else 404)
        self.end_headers()
        self.wfile.write(b"{}" if ok else b"")

    def log_message(self, *args):
        pass

def serve_late(port, delay=5):
    time.sleep(delay)
    http.server.HTTPServer(("127.0.0.1", port), CheckStatus).serve_forever()

first, second = map(int, sys.argv[1:])
threading.Thread(target=serve_late, args=(first,), daemon=True).start()
try:
    launcher._check_rest_server(first)  # NNI's own: gives up after about 3 s
    print("unpatched: answered")
except Exception as e:
    print("unpatched:", type(e).__name__)
threading.Thread(target=serve_late, args=(second,), daemon=True).start()
with nni_glue.patient_manager_check(seconds=15):
    launcher._check_rest_server(second)
print("patient: answered")
print("restored:", launcher._check_rest_server.__module__)
"""


def test_a_manager_slow_to_listen_is_waited_for(tmp_path):
    """NNI's own check gives a new manager 3 s; one that listens after 5 s (a loaded machine)
    failed the experiment's start. Real NNI code against a real server that starts late, in a
    process of its own: importing NNI's launcher fixes its ~/nni-experiments path for the process."""
    import subprocess

    env = dict(os.environ, HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", SLOW_MANAGER, str(free_port()), str(free_port())], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    ours = [line for line in out.stdout.splitlines() if "WARNING: Timeout, retry" not in line]  # NNI's, on stdout
    assert ours == ["unpatched: ConnectionError", "patient: answered", "restored: nni.experiment.launcher"], (
        out.stdout + out.stderr)


@pytest.mark.timeout(420)
def test_two_trial_experiment(tmp_path, write_yaml, tiny_model_dir, monkeypatch, caplog):
    # NNI keeps its list of experiments in ~/nni-experiments/.experiment (Python and its Node.js
    # manager both read HOME): a test must leave nothing in the real home.
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    ckpt = tmp_path / "ckpt"
    config = write_yaml(tiny_run_config(tiny_model_dir, ckpt, max_steps=6, logging_steps=3))
    port = free_port()
    command = f"OMP_NUM_THREADS=1 USE_TF=0 {sys.executable} run_finetune.py --config_file {config} --do_nni"
    experiment = nni_glue.start_experiment(os.path.join(ROOT, "conf", "nni", "experiment.yaml"), port, overrides={
        "trial_command": command, "trial_code_directory": ROOT, "max_trial_number": 2, "trial_concurrency": 1,
        "max_experiment_duration": "6m", "experiment_working_directory": str(tmp_path / "nni"),
        "search_space_file": os.path.join(ROOT, "conf", "nni", "search_space.json")})
    try:
        portal = [r.getMessage() for r in caplog.records if "Web portal" in r.getMessage()]
        assert portal == [f"Web portal URL (loopback only): ${{CYAN}}http://127.0.0.1:{port}"], portal
        addresses = listening_addresses(port)
        assert addresses and addresses <= {"0100007F", "00000000000000000000000001000000"}, addresses
        deadline = time.time() + 360
        while experiment.get_status() not in ("DONE", "ERROR", "STOPPED") and time.time() < deadline:
            time.sleep(3)
        assert experiment.get_status() == "DONE"
        trials = experiment.list_trial_jobs()
        assert len(trials) == 2 and all(t.status == "SUCCEEDED" for t in trials), trials
        metrics = experiment.get_job_metrics()
        for trial in trials:
            reported = metrics[trial.trialJobId]
            finals = [float(decoded(m.data)) for m in reported if m.type == "FINAL"]
            intermediate = [float(decoded(m.data)) for m in reported if m.type == "PERIODICAL"]
            assert len(finals) == 1 and len(intermediate) == 2  # evaluations at steps 3 and 6
            final = finals[0]
            assert final == max(intermediate)
            # The trial's own results.json, in its own directory, agrees with what NNI received.
            results_path = ckpt / "nsmc_tiny" / "nni" / experiment.id / trial.trialJobId / "results.json"
            results = json.loads(results_path.read_text(encoding="utf-8"))
            assert results["best"]["score"] == pytest.approx(final)
            params = decoded(trial.hyperParameters[0])
            params = getattr(params, "parameters", None) or params["parameters"]
            assert params["learning_rate"] in (3e-5, 4e-5, 5e-5, 6e-5, 7e-5)
    finally:
        experiment.stop()
    assert not listening_addresses(port)
    assert (home / "nni-experiments" / ".experiment").is_file()  # where it would have gone
