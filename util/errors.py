"""The one error type the command-line scripts turn into a one-line message and exit 1."""


class UserInputError(Exception):
    """Bad input the user can fix: the message names the file, line or key."""


def run_cli(main):
    """Call ``main()``; on UserInputError print ``error: <message>`` to stderr and exit 1.

    Scripts wrap their entry point with this so users see one clear line
    instead of a traceback for mistakes in their own files or flags; a closed pipe on
    standard output ends the script quietly with status 141.
    """
    import sys

    try:
        return main()
    except UserInputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        # The reader went away (`| head -1`): stop quietly, as Unix tools do when SIGPIPE ends
        # them, with their status (128 + 13). Standard output is pointed at /dev/null so the
        # interpreter's final flush of what is still buffered raises nothing either.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
