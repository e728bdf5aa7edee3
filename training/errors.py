"""Errors of the training package a user can fix: a missing or corrupt dataset, a bad
training config, a checkpoint written with another config."""
from __future__ import annotations

from narnas.errors import UserError


class TrainingError(UserError):
    """A training problem told in one line."""
