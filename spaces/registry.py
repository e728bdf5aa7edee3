"""Name -> factory registries for spaces and their benchmark readers.

Built-in spaces and readers are listed here and imported on the first look-up, so
``import spaces`` starts nothing and no module registers anything as a side effect of
importing another. A plug-in registers its own with ``register_space`` /
``register_benchmark``.
"""
from __future__ import annotations

from pathlib import Path

from narnas.registry import Registry

from .errors import DataFileError, SpacesError, UnknownNameError

SPACES = Registry("space", ("spaces.nb101", "spaces.nb201", "spaces.darts", "spaces.ofa_mbv3"),
                  error=UnknownNameError)
#: space name -> ``(path, **options) -> Benchmark``, the function that opens its data files
BENCHMARKS = Registry("benchmark space", ("spaces.nb101.data", "spaces.nb201.data", "spaces.ofa_mbv3.data"),
                      error=UnknownNameError)


def register_space(name: str):
    return SPACES.register(name)


def register_benchmark(space: str):
    """Record the function ``(path, **options) -> Benchmark`` that opens ``space``'s data files."""
    return BENCHMARKS.register(space)


def list_spaces() -> list[str]:
    return SPACES.names()


def get_space(name: str, **options):
    """The search space registered as ``name`` with its ``options`` (spaces that take options
    declare them as the dataclass ``options_class``); unknown names list the valid ones."""
    cls = SPACES.get(name)
    if options and getattr(cls, "options_class", None) is None:
        raise SpacesError(f"space {name!r} takes no options, got {', '.join(sorted(options))}")
    return cls(**options)


def get_benchmark(space, path=None, **options):
    """Open the tabular benchmark of ``space`` (a name or a SearchSpace).

    ``path`` may be any file format the space's readers know, or, for every space, a table
    with an ``arch`` column or a run folder (:mod:`spaces.table`); ``None`` means the
    environment variable, then the default data folder (see each space's docs).
    """
    from .table import is_table, not_a_table, read_table
    name = space if isinstance(space, str) else space.name
    if path is not None and is_table(path):
        if options:
            raise SpacesError(f"a table ({path}) takes no benchmark options, got {', '.join(sorted(options))}")
        return read_table(get_space(name) if isinstance(space, str) else space, path)
    if name not in BENCHMARKS:
        if path is not None and not Path(path).exists():
            raise DataFileError(f"table {path} not found (space {name!r} reads only tables of your own results)")
        if path is not None:
            raise DataFileError(f"{not_a_table(path)}; space {name!r} reads only tables of your own results")
        raise SpacesError(f"space {name!r} has no benchmark reader; give a table of your own results (a CSV or "
                          f"JSON-lines file with an 'arch' column, or a run folder); readers: {', '.join(BENCHMARKS.names())}")
    return BENCHMARKS.get(name)(path, **options)
