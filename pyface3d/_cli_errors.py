"""One way for every ``pyface3d`` sub-command to report a bad argument or a missing file."""
import sys


def fail(command: str, error: BaseException) -> int:
    """Print ``pyface3d <command>: error: <message>`` on stderr and return exit status 2
    (a KeyError's message without the quotes repr adds)."""
    msg = error.args[0] if isinstance(error, KeyError) and error.args else error
    print(f"pyface3d {command}: error: {msg}", file=sys.stderr)
    return 2
