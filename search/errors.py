"""Errors of the search layer: all are user errors with a one-line message."""
from narnas.errors import UserError


class SearchError(UserError, ValueError):
    """Bad configuration or a run folder that cannot be used as asked."""


class StateError(SearchError):
    """A state file that is missing, truncated or corrupt."""
