"""Messages as JSON values and back, bit for bit.

Reads plain data: None, bool, int, float, str, tuples/lists, dicts with str keys, numpy arrays and
scalars, Enums and (nested) dataclasses. Writes JSON values:

- numpy array  -> {"__array__": dtype, "shape": [...], "data": flat list}   (float32 values are
  written as the float64 that equals them exactly, so they come back identical)
- dataclass    -> {"__dataclass__": "module.QualName", "fields": {name: value}}
- Enum member  -> {"__enum__": "module.QualName", "value": value}
- tuple / list -> JSON array; arrays decode as tuples (messages are frozen facts)

Decoding only builds dataclasses and Enums, from modules already imported or from the project's
own packages; anything else is a CodecError (the line counts as corrupt).
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import sys
from typing import Any

import numpy as np

PROJECT_PACKAGES = ("components", "systems", "engine")


class CodecError(ValueError):
    """A JSON value that does not decode into the data it claims to be."""


def type_name(kind: type) -> str:
    """The name a class is written under: 'module.QualName'."""
    return f"{kind.__module__}.{kind.__qualname__}"


def encode(value: Any) -> Any:
    """A JSON-serialisable form of `value` (see the module docstring); raises TypeError otherwise."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return {"__enum__": type_name(type(value)), "value": encode(value.value)}
    if isinstance(value, np.ndarray):
        return {"__array__": value.dtype.str, "shape": list(value.shape), "data": value.ravel().tolist()}
    if isinstance(value, np.generic):
        return value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return {"__dataclass__": type_name(type(value)), "fields": fields}
    if isinstance(value, (tuple, list)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"cannot record a dict with non-string keys: {list(value)[:3]}")
        return {k: encode(v) for k, v in value.items()}
    raise TypeError(f"cannot record a value of type {type(value).__name__}")


def decode(value: Any) -> Any:
    """The value `encode` was given (arrays as tuples); raises CodecError on malformed input."""
    if isinstance(value, list):
        return tuple(decode(v) for v in value)
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        return _decode_array(value)
    if "__dataclass__" in value:
        kind = resolve(value["__dataclass__"])
        if not dataclasses.is_dataclass(kind):
            raise CodecError(f"{value['__dataclass__']} is not a dataclass")
        fields = value.get("fields")
        if not isinstance(fields, dict):
            raise CodecError(f"{value['__dataclass__']} has no fields")
        try:
            return kind(**{k: decode(v) for k, v in fields.items()})
        except TypeError as error:
            raise CodecError(f"{value['__dataclass__']}: {error}") from None
    if "__enum__" in value:
        kind = resolve(value["__enum__"])
        if not (isinstance(kind, type) and issubclass(kind, enum.Enum)):
            raise CodecError(f"{value['__enum__']} is not an Enum")
        try:
            return kind(decode(value.get("value")))
        except ValueError as error:
            raise CodecError(str(error)) from None
    return {k: decode(v) for k, v in value.items()}


def resolve(name: Any) -> type:
    """The class written as 'module.QualName'; raises CodecError when it cannot be found."""
    if not isinstance(name, str) or "." not in name:
        raise CodecError(f"bad type name {name!r}")
    parts = name.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        module = sys.modules.get(module_name)
        if module is None and parts[0] in PROJECT_PACKAGES:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
        if module is None:
            continue
        target: Any = module
        for attr in parts[split:]:
            target = getattr(target, attr, None)
        if isinstance(target, type):
            return target
    raise CodecError(f"unknown type {name} (recorded by another version of sa3d?)")


def _decode_array(value: dict) -> np.ndarray:
    try:
        dtype = np.dtype(value["__array__"])
        shape = tuple(int(s) for s in value["shape"])
        if dtype.kind not in "biuf" or dtype.hasobject:
            raise CodecError(f"array dtype {dtype} cannot be recorded")
        array = np.asarray(value["data"], dtype=np.float64 if dtype.kind == "f" else dtype).astype(dtype)
        return array.reshape(shape)
    except (KeyError, TypeError, ValueError) as error:
        raise CodecError(f"malformed array ({error})") from None
