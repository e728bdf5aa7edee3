"""What the search CLIs share: one readable line for an error, exit code 2."""
from __future__ import annotations

import sys

#: Errors a user's input can cause (spaces, predictor and search errors are ValueErrors;
#: a missing table column is a KeyError).
USER_ERRORS = (ValueError, KeyError)


def report(err: BaseException) -> int:
    msg = err.args[0] if isinstance(err, KeyError) and err.args else err
    print(f"error: {msg}", file=sys.stderr)
    return 2
