"""Typed dataclass configs: build from dicts/JSON, override from the CLI, reject unknown keys.

Every config in millivid is a (nested) dataclass with defaults. This module is the one place that
turns dicts, JSON files and ``--set a.b=value`` strings into those dataclasses, so the rules are
the same everywhere: an unknown key is an error that names the key and lists the known ones.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from millivid.atomic import write_json_atomic

T = TypeVar("T")


class ConfigError(ValueError):
    """A config key, value or file that does not fit the dataclass it is meant for."""


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(value: Any, typ: Any, where: str) -> Any:
    """Convert a JSON-ish value to ``typ`` (dataclass, tuple, list, scalar, Optional)."""
    origin = typing.get_origin(typ)
    if dataclasses.is_dataclass(typ):
        if isinstance(value, typ):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {typ.__name__}, got {value!r}")
        return from_dict(typ, value, where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(typ)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except (ConfigError, TypeError, ValueError) as err:
                errors.append(str(err))
        raise ConfigError(f"{where}: {value!r} fits none of {typ}: {errors}")
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v != ""]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(typ)
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is typing.Literal:
        if value not in typing.get_args(typ):
            raise ConfigError(f"{where}: {value!r} is not one of {typing.get_args(typ)}")
        return value
    if typ is Any:
        return value
    if typ is bool:
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{where}: {value!r} is not a boolean")
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {value!r} is not a boolean")
        return value
    if typ in (int, float, str):
        if typ is int and isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{where}: {value!r} is not an integer")
        if typ is int and isinstance(value, bool):
            raise ConfigError(f"{where}: {value!r} is not an integer")
        try:
            return typ(value)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{where}: {value!r} is not a {typ.__name__}") from err
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``; keys missing from ``data`` keep their defaults."""
    types_ = _field_types(cls)
    unknown = sorted(set(data) - set(types_))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} for {cls.__name__} (known: {', '.join(types_)})"
        )
    kwargs = {k: _coerce(v, types_[k], f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain JSON-able dict of a dataclass config (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def merge(cfg: T, data: dict[str, Any], where: str = "config") -> T:
    """Return ``cfg`` with the (possibly nested) values of ``data`` replaced."""
    types_ = _field_types(type(cfg))
    changes = {}
    for key, value in data.items():
        if key not in types_:
            raise ConfigError(
                f"{where}: unknown key {key!r} for {type(cfg).__name__} (known: {', '.join(types_)})"
            )
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            changes[key] = merge(current, value, f"{where}.{key}")
        else:
            changes[key] = _coerce(value, types_[key], f"{where}.{key}")
    return dataclasses.replace(cfg, **changes)


def parse_override(text: str) -> dict[str, Any]:
    """``"model.depth=8"`` -> ``{"model": {"depth": 8}}``; the value is JSON when it parses."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, raw = text.split("=", 1)
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    out: dict[str, Any] = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def apply_overrides(cfg: T, overrides: list[str] | None) -> T:
    """Apply ``--set`` strings in order."""
    for text in overrides or []:
        cfg = merge(cfg, parse_override(text))
    return cfg


def save_json(cfg: Any, path: str | Path) -> None:
    """Write ``cfg`` as JSON atomically (``millivid.atomic``)."""
    write_json_atomic(path, to_dict(cfg))


def load_json(cls: type[T], path: str | Path) -> T:
    """Read a config JSON file into ``cls``; errors name the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: config file not found") from err
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON ({err})") from err
    return from_dict(cls, data, where=str(path))
