"""User-facing errors of the spaces package.

Every problem a user can cause (a bad architecture, an unknown name, a missing or
unreadable data file) raises a subclass of :class:`SpacesError`; the CLIs catch it
and print one line.
"""
from __future__ import annotations

from narnas.errors import UserError


class SpacesError(UserError):
    """Base class of the errors a user can fix."""


class InvalidArchError(SpacesError, ValueError):
    """An architecture string, JSON object or cell is malformed or violates the space's rules."""


class UnknownNameError(SpacesError, ValueError):
    """A name (space, operation, metric, ...) that is not registered."""

    def __init__(self, kind: str, name: object, valid):
        valid = sorted(valid)
        super().__init__(f"unknown {kind} {name!r}; valid: {', '.join(map(str, valid))}")
        self.kind, self.name, self.valid = kind, name, valid


class DataFileError(SpacesError, OSError):
    """A benchmark or data file is missing, unreadable or not in a known format."""
