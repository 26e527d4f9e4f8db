"""Run one pipeline stage as a command and record its wall time.

    python -m util.stage_timer --record data/demo/timings.json --stage preprocess -- python preprocess.py ...

The command's exit status is passed through; the time is recorded only when it succeeds,
so the summary never shows a stage that did not finish.
"""
import argparse
import json
import os
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
    status = subprocess.call(command)
    if status == 0:
        timings = {}
        if os.path.exists(args.record):
            with open(args.record, encoding="utf-8") as f:
                timings = json.load(f)
        timings[args.stage] = round(time.time() - start, 1)
        write_json(args.record, timings)
    sys.exit(status)


if __name__ == "__main__":
    main()
