"""Typed configs: dataclasses built from plain dicts (JSON, CLI overrides), checked field
by field, with nested sections.

``build(Config, values)`` is the one way a dict becomes a config anywhere in the engine:
unknown keys are an error listing the valid ones, a value of the wrong type is an error
naming its dotted path, and a nested dataclass field takes a dict. ``flatten`` and
``differences`` compare two config trees key by key (resume checks).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Union

from .errors import ConfigError


def build(cls, values: dict | None = None, path: str = ""):
    """An instance of dataclass ``cls`` from ``values``; missing fields take their defaults.

    Values are checked against the field types: ``int`` takes whole numbers only (not
    ``2.5``, not ``True``), ``float`` takes ints too, ``bool`` takes booleans (or the
    strings true/false), ``X | None`` takes None, dataclass fields take dicts. After
    building, the config's own ``validate()`` (ranges, choices) runs when it has one.
    """
    values = {} if values is None else values
    if isinstance(values, cls):
        return values
    if not isinstance(values, dict):
        raise ConfigError(f"{path or cls.__name__} must be a mapping of keys to values, got {_show(values)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        where = f" in {path}" if path else f" for {cls.__name__}"
        raise ConfigError(f"unknown config key(s) {', '.join(map(str, unknown))}{where}; "
                          f"valid: {', '.join(sorted(fields)) or 'none (it has no settings)'}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: coerce(hints[name], value, _join(path, name)) for name, value in values.items()}
    config = cls(**kwargs)
    if hasattr(config, "validate"):
        config.validate()
    return config


def at_least(config, minimum, *names: str, where: str = "") -> None:
    """A ConfigError when any of the fields ``names`` of ``config`` is below ``minimum``."""
    for name in names:
        value = getattr(config, name)
        if value < minimum:
            raise ConfigError(f"{_join(where, name)} must be at least {minimum}, got {value}")


def coerce(kind, value, path: str):
    """``value`` checked (and, where lossless, converted) to type ``kind``."""
    origin = typing.get_origin(kind)
    if origin in (Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(option, value, path)
            except ConfigError as err:
                errors.append(err)
        raise errors[0] if len(errors) == 1 else ConfigError(
            f"{path} must be {' or '.join(_name(o) for o in options)}, got {_show(value)}")
    if dataclasses.is_dataclass(kind):
        return build(kind, value, path)
    if kind is Any:
        return value
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ConfigError(f"{path} must be true or false, got {_show(value)}")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{path} must be a whole number, got {_show(value)}")
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{path} must be a number, got {_show(value)}")
    if kind is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{path} must be a string, got {_show(value)}")
    if origin is dict or kind is dict:
        if isinstance(value, dict):
            return dict(value)
        raise ConfigError(f"{path} must be a mapping, got {_show(value)}")
    if origin in (tuple, list) or kind in (tuple, list):
        if isinstance(value, (list, tuple)):
            args = [a for a in typing.get_args(kind) if a is not Ellipsis]
            item = args[0] if len(args) == 1 else None
            items = [coerce(item, v, f"{path}[{i}]") if item else v for i, v in enumerate(value)]
            return tuple(items) if (origin or kind) is tuple else items
        raise ConfigError(f"{path} must be a list, got {_show(value)}")
    return value  # a type this helper does not check (left to the config's validate())


def to_dict(config) -> dict:
    """A JSON-ready dict of a config tree (tuples become lists)."""
    return _jsonable(dataclasses.asdict(config))


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}; empty mappings stay as leaves."""
    out = {}
    for key, value in tree.items():
        path = _join(prefix, str(key))
        if isinstance(value, dict) and value:
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out


def set_path(tree: dict, path: str, value) -> None:
    """Set ``tree["a"]["b"] = value`` for ``path`` "a.b", making the inner mappings."""
    *parents, leaf = path.split(".")
    node = tree
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{path}: {part} is a value, not a section")
        node = child
    node[leaf] = value


def differences(saved: dict, new: dict, ignore: tuple[str, ...] = ()) -> list[str]:
    """Dotted keys whose values differ between two config trees, leaving out the keys
    under any prefix in ``ignore``."""
    a, b = flatten(saved), flatten(new)
    skip = lambda k: any(k == p or k.startswith(p + ".") for p in ignore)
    return sorted(k for k in set(a) | set(b) if not skip(k) and a.get(k) != b.get(k))


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _name(kind) -> str:
    return getattr(kind, "__name__", str(kind))


def _show(value) -> str:
    return f"{value!r} ({type(value).__name__})"
