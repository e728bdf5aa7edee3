"""Accuracy predictors: NAR-Former, TNASP, GIN and MLP behind one interface.

>>> import predictor
>>> p = predictor.get_predictor("narformer", epochs=100)
>>> p.fit(graphs, y, val=(val_graphs, val_y)); scores = p.predict(other_graphs)
"""
from .errors import PredictorError
from .registry import get_predictor, list_predictors, register_predictor

__all__ = ["PredictorError", "get_predictor", "list_predictors", "register_predictor"]
