"""Run one pipeline stage as a command and record its wall time.

    python -m util.stage_timer --record data/demo/timings.json --stage preprocess -- python preprocess.py ...

The command's exit status is passed through; the time is recorded only when it succeeds,
so the summary never shows a stage that did not finish.

Stopping the timer stops the stage the way the stage itself would be stopped: Ctrl-C reaches
the stage directly (the terminal signals the whole process group), so the timer only waits
for it; a SIGTERM sent to the timer alone is passed on to the stage. Either way the timer
waits for the stage's own cleanup ("interrupted", temporaries removed) and exits with its status.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

from util.files import write_json


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        sys.exit("usage: python -m util.stage_timer --record FILE --stage NAME -- COMMAND ...")
    split = argv.index("--")
    parser = argparse.ArgumentParser()
    parser.add_argument("--record", required=True)
    parser.add_argument("--stage", required=True)
    args = parser.parse_args(argv[:split])
    command = argv[split + 1:]
    start = time.time()
    status = run_stage(command)
    if status == 0:
        timings = {}
        if os.path.exists(args.record):
            with open(args.record, encoding="utf-8") as f:
                timings = json.load(f)
        timings[args.stage] = round(time.time() - start, 1)
        write_json(args.record, timings)
    sys.exit(status)


def run_stage(command):
    """The command's exit status (128 + N when a signal N ended it), signals handled as above."""
    stage = subprocess.Popen(command)
    # subprocess.call would kill the stage with SIGKILL a quarter second after a Ctrl-C, cutting
    # its cleanup short; the stage has the Ctrl-C already and decides itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: stage.send_signal(signum))
    status = stage.wait()
    return 128 - status if status < 0 else status


if __name__ == "__main__":
    main()
