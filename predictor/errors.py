"""User-facing errors of the predictor package."""
from __future__ import annotations

from narnas.errors import UserError


class PredictorError(UserError, ValueError):
    """Bad predictor input or configuration (empty data, NaN targets, unknown names or keys)."""
