"""Message dataclasses compiled into validators: the one compiler of both message families.

:mod:`tickwire.protocol.messages` (agent ↔ server) and :mod:`tickwire.protocol.work` (PlayerPool,
chief/worker) each declare their messages as frozen dataclasses with a ``KIND``; each field's
annotation says which values it takes (``X | None``: also nil; ``float``: also int; ``Any``:
anything; never a bool for an int). :func:`compile_message` turns one class into its field
names (the wire order) and a validator that builds the message from a decoded map. A field
with a default or a ``default_factory`` may be absent on the wire; the envelope (version,
kind) is each family's own.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, Union

from .errors import ProtocolError

#: Field names in wire order, and the validator ``map -> message``.
Compiled = tuple[list[str], Callable[[dict], Any]]


def accepted_types(tp: Any) -> tuple[tuple[type, ...], bool]:
    """(accepted python types, nullable) for a field annotation; an empty tuple accepts anything."""
    if tp is Any:
        return (), True
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = typing.get_args(tp)
        accepted: tuple[type, ...] = ()
        for a in args:
            if a is not type(None):
                inner, _ = accepted_types(a)
                if not inner:
                    return (), True
                accepted += inner
        return accepted, type(None) in args
    if tp is float:
        return (int, float), False
    return (tp,), False


def compile_message(cls: type) -> Compiled:
    """Field names and a fast validator ``map -> cls`` for one message class (its ``KIND``
    names it in errors). The validator raises :class:`ProtocolError` (``malformed``) for a
    missing required field or a value of the wrong type, saying which."""
    hints = typing.get_type_hints(cls)
    fields = []
    for f in dataclasses.fields(cls):
        accepted, nullable = accepted_types(hints[f.name])
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        fields.append((f.name, accepted, nullable, required, bool not in accepted))
    names = [f[0] for f in fields]
    kind = cls.KIND  # type: ignore[attr-defined]

    def build(obj: dict) -> Any:
        kwargs = {}
        for name, accepted, nullable, required, no_bool in fields:
            try:
                value = obj[name]
            except KeyError:
                if required:
                    raise ProtocolError("malformed", f"{kind} message lacks field {name!r}") from None
                continue
            if (
                accepted
                and not (value is None and nullable)
                and (not isinstance(value, accepted) or (no_bool and value.__class__ is bool))
            ):
                raise ProtocolError(
                    "malformed",
                    f"{kind}.{name} must be "
                    f"{'/'.join(t.__name__ for t in accepted)}, got "
                    f"{type(value).__name__}",
                )
            kwargs[name] = value
        return cls(**kwargs)

    return names, build
