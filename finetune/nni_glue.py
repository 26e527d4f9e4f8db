"""NNI hyperparameter search: the trial side (parameters in, scores out) and a loopback launcher.

A trial started by an NNI experiment merges ``nni.get_next_parameter()`` into the YAML config,
reports the selection split's primary metric at every evaluation and the best one at the end.
Run outside an experiment, ``--do_nni`` warns and trains with the YAML's values.

NNI 3.0's manager (a Node.js server) listens on every interface and has no option to change
that; ``loopback_environment`` preloads ``conf/nni/loopback.js`` into it, which makes every
server it opens listen on 127.0.0.1 only.
"""
import contextlib
import logging
import os

logger = logging.getLogger(__name__)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOOPBACK_JS = os.path.join(ROOT, "conf", "nni", "loopback.js")


def in_experiment():
    """True inside a trial that an NNI experiment launched."""
    return bool(os.environ.get("NNI_PLATFORM")) and bool(os.environ.get("NNI_TRIAL_JOB_ID"))


def trial_ids():
    """(experiment id, trial id) of this trial."""
    return os.environ.get("NNI_EXP_ID", "standalone"), os.environ.get("NNI_TRIAL_JOB_ID", "standalone")


def _flatten(params):
    """Nested search spaces ({"optim": {"learning_rate": ...}}) give their leaf keys."""
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(_flatten({k: v for k, v in value.items() if k != "_name"}))
        else:
            flat[key] = value
    return flat


def next_parameters():
    """This trial's hyperparameters as a flat dict ({} with a warning outside an experiment)."""
    if not in_experiment():
        logger.warning("--do_nni given outside an NNI experiment: training with the YAML's values")
        return {}
    import nni

    params = nni.get_next_parameter() or {}
    logger.info("NNI parameters: %s", params)
    return _flatten(params)


class NniReporter:
    """Sends scores to NNI when enabled and inside an experiment; otherwise does nothing."""

    def __init__(self, enabled):
        self.enabled = bool(enabled) and in_experiment()

    def intermediate(self, score):
        if self.enabled:
            import nni

            nni.report_intermediate_result(float(score))

    def final(self, score):
        if self.enabled:
            import nni

            nni.report_final_result(float(score))


def loopback_environment(env=None):
    """A copy of ``env`` (default os.environ) that makes NNI's Node.js servers bind 127.0.0.1."""
    env = dict(os.environ if env is None else env)
    option = f"--require {LOOPBACK_JS}"
    if option not in env.get("NODE_OPTIONS", ""):
        env["NODE_OPTIONS"] = (env.get("NODE_OPTIONS", "") + " " + option).strip()
    return env


class LoopbackUrlsOnly(logging.Filter):
    """NNI logs a web-portal URL for every interface of the machine; bound to 127.0.0.1, only
    the loopback one answers, so only it is shown."""

    def filter(self, record):
        if isinstance(record.msg, str) and record.msg.startswith("Web portal URLs:"):
            urls = [u.replace("${CYAN}", "") for u in record.msg.split() if "://127.0.0.1:" in u]
            # ${CYAN}: NNI's own colour marker, which its log formatter resolves.
            record.msg = "Web portal URL (loopback only): ${CYAN}" + " ".join(dict.fromkeys(urls))
            record.args = ()
        return True


# NNI 3.0's launcher asks the new manager for /check-status 3 times, 1 s apart, then gives up.
# On a 2-core machine busy with two pretraining runs the Node.js manager took longer than that
# to listen, and the experiment failed with "Connection refused" though nothing was wrong.
MANAGER_START_SECONDS = 60


@contextlib.contextmanager
def patient_manager_check(seconds=MANAGER_START_SECONDS):
    """Within it, NNI's launcher waits up to ``seconds`` for its manager to answer."""
    from nni.experiment import launcher

    check = launcher._check_rest_server

    def patient(port, retry=3, url_prefix=None):
        return check(port, retry=max(retry, seconds), url_prefix=url_prefix)

    launcher._check_rest_server = patient
    try:
        yield
    finally:
        launcher._check_rest_server = check


def start_experiment(config_file, port, overrides=None, loopback=True):
    """Start an NNI experiment from a YAML experiment config; returns the ``Experiment``.

    ``overrides`` sets config fields by their Python names (e.g. ``max_trial_number``).
    With ``loopback`` the manager listens on 127.0.0.1 only. The caller stops it.
    """
    from nni.experiment import Experiment
    from nni.experiment.config import ExperimentConfig

    config = ExperimentConfig.load(config_file)
    for key, value in (overrides or {}).items():
        setattr(config, key, value)
    experiment = Experiment(config)
    saved = os.environ.get("NODE_OPTIONS")
    url_filter = LoopbackUrlsOnly()
    if loopback:
        os.environ["NODE_OPTIONS"] = loopback_environment()["NODE_OPTIONS"]
        logging.getLogger("nni.experiment").addFilter(url_filter)
    try:
        with patient_manager_check():
            experiment.start(port)
    finally:
        logging.getLogger("nni.experiment").removeFilter(url_filter)
        if loopback:
            if saved is None:
                os.environ.pop("NODE_OPTIONS", None)
            else:
                os.environ["NODE_OPTIONS"] = saved
    return experiment
