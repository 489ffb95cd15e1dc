"""pydantic's validation errors said in a config author's words.

Each problem becomes one line naming the target (1-based, by name or URL), the key, what was
expected and what was given, so that `Input should be a valid number, unable to parse string as a
number` on `targets.0.timeout` reads `target 1 (https://a.test/): timeout: expected a number, got 'ten'`.
"""

from __future__ import annotations

import datetime
import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

_NUMBER_ERRORS = {
    "int_parsing",
    "int_type",
    "int_from_float",
    "float_parsing",
    "float_type",
    "finite_number",
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
}
_TABLE_ERRORS = {"model_type", "dict_type", "model_attributes_type"}


def explain(exc: ValidationError, source: str, root: type[BaseModel], data: Any) -> list[str]:
    """One `source: where: what` line per problem of `data` (the parsed TOML) against `root`."""
    return [f"{source}: {where(err['loc'], data)}: {describe(err, root)}" for err in exc.errors()]


def target_label(index: int, data: Any, keys: Sequence[str] = ("name", "url")) -> str:
    """`target 2 (shop)` or `target 2 (https://a.test/)`: 1-based, as a reader counts [[targets]]."""
    entries = data.get("targets") if isinstance(data, dict) else None
    entry = entries[index] if isinstance(entries, list) and index < len(entries) else None
    label = f"target {index + 1}"
    if isinstance(entry, dict):
        for key in keys:
            if isinstance(entry.get(key), str) and entry[key].strip():
                return f"{label} ({' '.join(entry[key].split())})"
    return label


def where(loc: Sequence[int | str], data: Any) -> str:
    """The key as the config's author wrote it: `scan.timeout`, `target 1 (...): url`."""
    parts = list(loc)
    prefix = ""
    if len(parts) >= 2 and parts[0] == "targets" and isinstance(parts[1], int):
        # a bad URL is quoted by its own message: the label then names the target only by name
        named_by = ("name",) if parts[2:3] == ["url"] else ("name", "url")
        prefix, parts = target_label(parts[1], data, named_by), parts[2:]
    key = ""
    for part in parts:
        key += f", item {part + 1}" if isinstance(part, int) else (f".{part}" if key else str(part))
    if prefix:
        return f"{prefix}: {key}" if key else prefix
    return key or "(top level)"


def describe(err: ErrorDetails, root: type[BaseModel]) -> str:
    """What was wrong with one value, in words: what was expected and what was given."""
    kind, ctx = err["type"], err.get("ctx") or {}
    keys = [p for p in err["loc"] if isinstance(p, str)]
    if kind == "missing":
        return "required, but not set"
    if kind == "extra_forbidden":
        parent = _model_at(root, keys[:-1])
        close = difflib.get_close_matches(keys[-1], _keys(parent), n=1) if parent and keys else []
        return "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", err["msg"]))
    got = f", got {shown(err.get('input'))}"
    info = _field(root, keys)
    if kind in _NUMBER_ERRORS:
        return f"expected {_number(info, kind)}{got}"
    if kind in ("bool_parsing", "bool_type"):
        return f"expected true or false{got}"
    if kind == "string_type":
        return f"expected a quoted string{got}"
    if kind == "path_type":
        return f"expected a file path as a quoted string{got}"
    if kind == "literal_error":
        return f"expected {ctx.get('expected')}{got}"
    if kind == "too_short":
        n = ctx.get("min_length", 1)
        return f"expected at least {n} entr{'y' if n == 1 else 'ies'}{got}"
    if kind == "list_type":
        if keys == ["targets"] and isinstance(err.get("input"), dict):
            return "expected one [[targets]] table per target (double brackets), got a single [targets] table"
        return f'expected a list such as ["a", "b"]{got}'
    if kind in _TABLE_ERRORS:
        return (
            f"expected a table ([{'.'.join(keys)}] or {{ key = value }}){got}"
            if keys
            else f"expected a table{got}"
        )
    return f"{err['msg'][:1].lower()}{err['msg'][1:]}{got}"


def shown(value: Any) -> str:
    """A value as it looks in TOML (true, not True), lists and tables named rather than dumped."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (datetime.date, datetime.time)):
        return f"a date or time ({value})"
    return repr(value)


def _number(info: FieldInfo | None, kind: str) -> str:
    annotation = info.annotation if info else None
    whole = kind.startswith("int") or int in _leaves(annotation)
    noun = "a whole number" if whole else "a number"
    bounds = {
        attr: getattr(m, attr)
        for m in (info.metadata if info else [])
        for attr in ("gt", "ge", "lt", "le")
        if isinstance(m, getattr(annotated_types, attr.capitalize()))
    }
    if "ge" in bounds and "le" in bounds:
        return f"{noun} from {bounds['ge']} to {bounds['le']}"
    lower = (
        f"greater than {bounds['gt']}"
        if "gt" in bounds
        else f"of at least {bounds['ge']}"
        if "ge" in bounds
        else ""
    )
    upper = (
        f"less than {bounds['lt']}" if "lt" in bounds else f"at most {bounds['le']}" if "le" in bounds else ""
    )
    words = [w for w in (lower, upper) if w]
    return f"{noun} {' and '.join(words)}" if words else noun


def _leaves(annotation: Any) -> set[Any]:
    """The plain types inside an annotation (`float | None` -> {float, NoneType})."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) in (typing.Union, list):
        return set().union(*(_leaves(a) for a in typing.get_args(annotation)))
    return {annotation}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    return next((a for a in _leaves(annotation) if isinstance(a, type) and issubclass(a, BaseModel)), None)


def _lookup(model: type[BaseModel], key: str) -> FieldInfo | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info
    return None


def _model_at(root: type[BaseModel], keys: list[str]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = root
    for key in keys:
        info = _lookup(model, key) if model else None
        model = _model_in(info.annotation) if info else None
    return model


def _field(root: type[BaseModel], keys: list[str]) -> FieldInfo | None:
    parent = _model_at(root, keys[:-1]) if keys else None
    return _lookup(parent, keys[-1]) if parent else None


def _keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]
