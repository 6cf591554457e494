"""Summary figures the benchmarks print."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float) -> float:
    """Linearly interpolated percentile (numpy's default method) of a non-empty sequence."""
    if not values:
        raise ValueError("percentile of no values")
    data = sorted(values)
    rank = (len(data) - 1) * pct / 100.0
    low = int(rank)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (rank - low)
