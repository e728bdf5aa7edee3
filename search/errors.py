"""Errors of the search layer: all are ValueErrors with a one-line message."""


class SearchError(ValueError):
    """Bad configuration or a run folder that cannot be used as asked."""


class StateError(SearchError):
    """A state file that is missing, truncated or corrupt."""
