"""Explained quantities: a value as the product of named factors (``--explain``).

Every ``Term`` is built from the same numbers the count uses, so its factors multiply to its
value exactly (a test checks it); ``tfcli.render`` formats it as ``2 x t x h x H·d = ...``.

Only the standard library is imported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    """``value = prod(factor values)``; ``factors`` are ``(symbol, value)`` pairs."""

    component: str
    factors: tuple[tuple[str, int], ...]
    note: str = ""

    @property
    def value(self) -> int:
        return math.prod(v for _, v in self.factors)


def sum_terms(terms: list[Term]) -> dict[str, int]:
    """Component -> sum of its terms' values."""
    out: dict[str, int] = {}
    for term in terms:
        out[term.component] = out.get(term.component, 0) + term.value
    return out
