"""Argument checks shared by the public API: one wording for every int parameter."""

from __future__ import annotations

import operator

__all__ = ["check_int"]


def check_int(name: str, value: object, what: str = "an int") -> int:
    """``value`` as an int: ints and NumPy integers pass, bools and floats do not.

    Raises:
        TypeError: ``value`` is not an integer, or is a bool.
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be {what}, got bool")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}") from None
