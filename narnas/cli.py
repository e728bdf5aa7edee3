"""What every command-line tool shares: ``KEY=VALUE`` parsing and one error policy.

A user-facing error (:class:`narnas.errors.UserError`) is printed as one line on stderr
with exit code 2; any other exception is a bug and keeps its traceback. A closed output
pipe (``... | head``) ends the tool quietly. SIGTERM is turned into :class:`Terminated`
(a KeyboardInterrupt), so Ctrl-C and ``kill`` take the same clean way out: whatever the
tool saves on an interrupt is saved, and it exits 130 (SIGINT) or 143 (SIGTERM).
"""
from __future__ import annotations

import ast
import os
import signal
import sys
import threading
from typing import Callable

from .errors import ConfigError, UserError


#: The name the ``narnas`` command runs a tool under (``narnas train``); None: its ``python -m`` name.
_invoked_as: str | None = None


def invoked_as(name: str | None) -> None:
    """Say that the tools run next are the ``narnas`` subcommand ``name`` (for their usage lines)."""
    global _invoked_as
    _invoked_as = name


def prog(default: str) -> str:
    """A tool's program name for ``--help`` and usage errors: ``narnas SUB`` when the ``narnas``
    command runs it, else ``default`` (its ``python -m`` name)."""
    return _invoked_as or default


def parse_overrides(items, flag: str = "--set") -> dict:
    """``KEY=VALUE`` strings -> dict; values are Python literals where they parse
    (numbers, booleans, tuples, None), else strings (``pool=mean``)."""
    config = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} takes KEY=VALUE, got {item!r}")
        try:
            config[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            config[key.strip()] = value.strip()
    return config


def parse_names(text: str) -> list[str]:
    """``"synflow, naswot"`` -> ["synflow", "naswot"]: a flag's comma-separated names."""
    return [n.strip() for n in text.split(",") if n.strip()]


def one_line(err: BaseException) -> str:
    text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    return " ".join(str(text).split()) or type(err).__name__


def report(err: BaseException) -> int:
    print(f"error: {one_line(err)}", file=sys.stderr, flush=True)
    return 2


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread where Ctrl-C raises KeyboardInterrupt."""


#: The last SIGINT / SIGTERM, kept: the exception a handler raises can land where Python
#: ignores it (a weakref callback, a __del__) or in a library that ends its work and returns
#: (Ray Tune's fit); the tool then stops at its next safe point (``raise_if_interrupted``).
_received: int | None = None


def _terminate(signum, frame):
    global _received
    _received = signum
    raise Terminated()


def on_interrupt(signum, frame):
    """SIGINT's handler: as Python's own (a KeyboardInterrupt), and remembered."""
    global _received
    _received = signum
    raise KeyboardInterrupt()


def _unraisable(hook):
    """Python prints an exception it had to ignore (raised in a weakref callback or a __del__)
    with its traceback; a stop's exception lost that way is already remembered and acted on at
    the next safe point, so it is not printed. Anything else goes to the previous hook."""
    def handle(unraisable):
        if isinstance(unraisable.exc_value, (KeyboardInterrupt, Terminated)) and _received is not None:
            return
        hook(unraisable)
    return handle


sys.unraisablehook = _unraisable(sys.unraisablehook)


def interruption(message: str) -> KeyboardInterrupt:
    """The exception that ends a stop: Terminated after a SIGTERM, else a Ctrl-C's KeyboardInterrupt."""
    return Terminated(message) if _received == signal.SIGTERM else KeyboardInterrupt(message)


def raise_if_interrupted() -> None:
    """At a safe point: end the work if a SIGINT / SIGTERM came and its exception was lost."""
    if _received is not None:
        raise interruption("interrupted")


def clear_interrupt() -> None:
    global _received
    _received = None


def interrupt_code(err: KeyboardInterrupt) -> int:
    return 143 if isinstance(err, Terminated) else 130


def run_main(main: Callable[[], int]) -> int:
    """Run a CLI's body under the shared error policy; returns the exit code."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate), signal.signal(signal.SIGINT, on_interrupt)
    try:
        return main()
    except UserError as err:
        return report(err)
    except KeyboardInterrupt as err:
        print("interrupted", file=sys.stderr, flush=True)
        return interrupt_code(err)
    except BrokenPipeError:
        # The reader went away (``| head``): stop writing, say nothing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous[0])
            signal.signal(signal.SIGINT, previous[1])
