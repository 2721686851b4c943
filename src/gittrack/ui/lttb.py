"""Largest-Triangle-Three-Buckets downsampling of a metric series before it is sent.

A 100,000-point curve becomes a few thousand points that draw the same picture: LTTB keeps the
first and last points and, in each bucket between, the point making the largest triangle with
the point kept before it and the mean of the next bucket, so spikes survive (Steinarsson,
"Downsampling Time Series for Visual Representation", 2013).
"""

from __future__ import annotations

import numpy as np


def lttb_indices(x: np.ndarray, y: np.ndarray, n_out: int) -> np.ndarray:
    """The positions of the points LTTB keeps, in increasing order.

    Args:
        x: the x values, non-decreasing (steps, times).
        y: the y values, finite (callers drop NaN and infinities first).
        n_out: how many points to keep; at least 3.
    Returns:
        ``min(n_out, len(x))`` positions, the first and the last always among them.
    Raises:
        ValueError: when ``x`` and ``y`` differ in length or ``n_out`` is below 3.
    """
    n = len(x)
    if len(y) != n:
        raise ValueError(f"x has {n} points and y {len(y)}: they must have the same length")
    if n_out < 3:
        raise ValueError(f"n_out {n_out} is too small: LTTB keeps at least 3 points")
    if n <= n_out:
        return np.arange(n)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    edges = np.linspace(1, n - 1, n_out - 1).astype(np.int64)  # n_out - 2 inner buckets
    kept = np.empty(n_out, dtype=np.int64)
    kept[0], kept[-1] = 0, n - 1
    previous = 0
    for b in range(n_out - 2):
        start, stop = edges[b], edges[b + 1]
        next_stop = edges[b + 2] if b + 2 < len(edges) else n
        nxt = slice(stop, next_stop) if stop < next_stop else slice(n - 1, n)
        mean_x, mean_y = x[nxt].mean(), y[nxt].mean()
        bx, by = x[start:stop], y[start:stop]
        area = np.abs(
            (x[previous] - mean_x) * (by - y[previous])
            - (x[previous] - bx) * (mean_y - y[previous])
        )
        previous = start + int(np.argmax(area))
        kept[b + 1] = previous
    return kept


def downsample(x: np.ndarray, y: np.ndarray, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``y`` reduced to at most ``n_out`` points by LTTB (see ``lttb_indices``)."""
    kept = lttb_indices(x, y, n_out)
    return np.asarray(x)[kept], np.asarray(y)[kept]
