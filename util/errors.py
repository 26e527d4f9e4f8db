"""The one error type the command-line scripts turn into a one-line message and exit 1."""


class UserInputError(Exception):
    """Bad input the user can fix: the message names the file, line or key."""


def run_cli(main):
    """Call ``main()``; on UserInputError print ``error: <message>`` to stderr and exit 1.

    Scripts wrap their entry point with this so users see one clear line
    instead of a traceback for mistakes in their own files or flags.
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
