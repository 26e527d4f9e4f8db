"""The one error type the command-line scripts turn into a one-line message and exit 1."""


class UserInputError(Exception):
    """Bad input the user can fix: the message names the file, line or key."""


def run_cli(main):
    """Call ``main()``; on UserInputError print ``error: <message>`` to stderr and exit 1.

    Scripts wrap their entry point with this so users see one clear line
    instead of a traceback for mistakes in their own files or flags; a closed pipe on
    standard output ends the script quietly with status 141. Ctrl-C and SIGTERM (a
    scheduler stopping the job) end the same way: the cleanup of whatever was being
    written runs, one "interrupted" line, exit 130 or 143 (util/signals.py).
    """
    import sys

    from util import signals

    signals.terminate_as_interrupt()
    try:
        return main()
    except UserInputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as e:
        _close_progress_bars()
        print(signals.interrupted_line(e), file=sys.stderr)
        sys.exit(signals.exit_status(e))
    except BrokenPipeError:
        # The reader went away (`| head -1`): stop quietly, as Unix tools do when SIGPIPE ends
        # them, with their status (128 + 13). Standard output is pointed at /dev/null so the
        # interpreter's final flush of what is still buffered raises nothing either.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)


def _close_progress_bars():
    """End the progress bars the interrupt left open, so "interrupted" is a line of its own
    and not the tail of a bar's line."""
    import sys

    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        bar.close()
