"""Search spaces: sample, mutate, canonicalise, encode and build architectures.

>>> import spaces
>>> space = spaces.get_space("nb201")
>>> bench = spaces.get_benchmark("nb201")
"""
from .base import ArchGraph, Enumeration, GraphEncoding, ModelBuilding, Sampling, SearchSpace, capabilities, require
from .benchmark import Benchmark
from .errors import DataFileError, InvalidArchError, SpacesError, UnknownNameError
from .registry import get_benchmark, get_space, list_spaces, register_benchmark, register_space

__all__ = [
    "ArchGraph", "Benchmark", "DataFileError", "Enumeration", "GraphEncoding", "InvalidArchError", "ModelBuilding",
    "Sampling", "SearchSpace", "SpacesError", "UnknownNameError", "capabilities", "get_benchmark", "get_space",
    "list_spaces", "register_benchmark", "register_space", "require",
]
