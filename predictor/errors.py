"""User-facing errors of the predictor package."""
from __future__ import annotations


class PredictorError(ValueError):
    """Bad predictor input or configuration (empty data, NaN targets, unknown names or keys)."""
