"""Search spaces as Python values, written as the space TOML the engine reads.

A space is a dict of parameter -> values, in the names of fastfc's space files:

- a list is a choice: ``"units": [32, 48, 64]``, ``"activation": ["elu", "relu"]``;
- a tuple ``(low, high)`` is a range: integers for ints (``"layers": (2, 4)``), uniform for floats
  (``"dropout": (0.0, 0.4)``);
- :func:`loguniform`, :func:`uniform`, :func:`int_range` and :func:`choice` say it explicitly and
  take the grid options (``count``, ``step``); ``per_layer=True`` on ``units`` lets each hidden
  layer draw its own width;
- a single value is a choice of one.

Parameters: layers, units, dropout, learning_rate, activation, optimizer (the engine refuses any
other name, naming it). A path to a ``.toml`` file is read as it is.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Union


@dataclass(frozen=True)
class Distribution:
    """One parameter's values: ``kind`` is choice, int, uniform or loguniform."""

    kind: str
    values: tuple
    options: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.options.items())
        if self.kind == "choice":
            return f"choice({list(self.values)!r}{extra})"
        return f"{self.kind}({self.values[0]!r}, {self.values[1]!r}{extra})"


def choice(values: Sequence[Any], *, per_layer: Optional[bool] = None) -> Distribution:
    """One of ``values`` (the grid tries each)."""
    opts = {} if per_layer is None else {"per_layer": bool(per_layer)}
    return Distribution("choice", tuple(values), opts)


def uniform(low: float, high: float, *, count: Optional[int] = None,
            step: Optional[float] = None) -> Distribution:
    """Uniform on [low, high]; a grid search takes ``count`` evenly spaced values (or every ``step``)."""
    return Distribution("uniform", (float(low), float(high)), _grid(count, step))


def loguniform(low: float, high: float, *, count: Optional[int] = None,
               step: Optional[float] = None) -> Distribution:
    """Log-uniform on [low, high] (learning rates); grid options as for :func:`uniform`."""
    return Distribution("loguniform", (float(low), float(high)), _grid(count, step))


def int_range(low: int, high: int, *, step: Optional[int] = None,
              per_layer: Optional[bool] = None) -> Distribution:
    """Integers low..=high (every ``step``)."""
    opts = _grid(None, step)
    if per_layer is not None:
        opts["per_layer"] = bool(per_layer)
    return Distribution("int", (int(low), int(high)), opts)


def _grid(count, step) -> dict:
    out = {}
    if count is not None:
        out["count"] = int(count)
    if step is not None:
        out["step"] = step
    return out


def _toml_value(v: Any, where: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if hasattr(v, "item") and not isinstance(v, (list, tuple)):  # numpy scalars
        v = v.item()
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"space: {where}: {v!r}; expected a finite number")
        return repr(v)
    raise ValueError(f"space: {where}: {v!r} ({type(v).__name__}); expected a number or a string")


def _as_distribution(name: str, v: Any) -> Distribution:
    if isinstance(v, Distribution):
        return v
    if isinstance(v, tuple):
        if len(v) != 2:
            raise ValueError(
                f"space: {name}: the tuple {v!r}; a tuple is a range (low, high), "
                "use a list for a choice")
        lo, hi = v
        if all(isinstance(x, int) and not isinstance(x, bool) for x in v):
            return int_range(lo, hi)
        return uniform(lo, hi)
    if isinstance(v, (list, range)) or type(v).__name__ == "ndarray":
        return choice(list(v))
    if isinstance(v, Mapping):
        raise ValueError(
            f"space: {name}: a dict; expected a list (choice), a tuple (low, high) or "
            "fastfc.uniform/loguniform/int_range/choice(...)")
    return choice([v])


def to_toml(space: Mapping[str, Any]) -> str:
    """The space file for ``space`` (a dict as described in this module)."""
    if not isinstance(space, Mapping):
        raise TypeError(f"space: a {type(space).__name__}; expected a dict or a path to a .toml file")
    lines = ["# written by fastfc.search from a Python dict"]
    for name, v in space.items():
        if not isinstance(name, str):
            raise ValueError(f"space: the key {name!r}; expected a parameter name")
        d = _as_distribution(name, v)
        if not d.values:
            raise ValueError(f"space: {name}: no values")
        lines.append(f"[{name}]")
        if d.kind == "choice":
            vals = ", ".join(_toml_value(x, name) for x in d.values)
            lines.append(f"choice = [{vals}]")
        else:
            lo, hi = (_toml_value(x, name) for x in d.values)
            lines.append(f"{d.kind} = [{lo}, {hi}]")
        for k, o in d.options.items():
            lines.append(f"{k} = {_toml_value(o, name + '.' + k)}")
    return "\n".join(lines) + "\n"


SpaceLike = Union[None, str, "os.PathLike[str]", Mapping[str, Any]]


def space_text(space: SpaceLike) -> Optional[tuple]:
    """(TOML text, name for messages) of ``space``, or None for the default space."""
    if space is None:
        return None
    if isinstance(space, (str, os.PathLike)):
        path = os.fspath(space)
        try:
            with open(path, encoding="utf-8") as f:
                return f.read(), path
        except FileNotFoundError:
            raise FileNotFoundError(f"space: {path}: no such file (expected a .toml space file or a dict)") from None
    return to_toml(space), "<space dict>"
