"""How a command reports a failure that only doing the work reveals: one line on stderr."""

from __future__ import annotations

import sys


def fail(message: str, command: str = "train") -> None:
    print(f"pycvnn {command}: {message}", file=sys.stderr)


def reason(err: BaseException) -> str:
    # strerror leaves out the file name, which for a save is the temporary file's, not the user's.
    return err.strerror if isinstance(err, OSError) and err.strerror else str(err)
