"""LTTB downsampling (``gittrack.ui.lttb``): what the charts of long series rely on."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gittrack.ui.lttb import downsample, lttb_indices


def reference_lttb(x: list[float], y: list[float], threshold: int) -> list[int]:
    """Steinarsson's algorithm as written in the thesis (plain loops), bucket edges as above."""
    n = len(x)
    if threshold >= n:
        return list(range(n))
    edges = [int(v) for v in np.linspace(1, n - 1, threshold - 1)]
    kept, a = [0], 0
    for b in range(threshold - 2):
        start, stop = edges[b], edges[b + 1]
        next_stop = edges[b + 2] if b + 2 < len(edges) else n
        nxt = range(stop, next_stop) if stop < next_stop else range(n - 1, n)
        avg_x = sum(x[i] for i in nxt) / len(nxt)
        avg_y = sum(y[i] for i in nxt) / len(nxt)
        best, best_area = start, -1.0
        for i in range(start, stop):
            area = abs((x[a] - avg_x) * (y[i] - y[a]) - (x[a] - x[i]) * (avg_y - y[a]))
            if area > best_area:
                best, best_area = i, area
        kept.append(best)
        a = best
    kept.append(n - 1)
    return kept


def test_a_long_series_keeps_exactly_n_out_points_with_its_first_and_last():
    x = np.arange(100_000, dtype=float)
    y = np.sin(x / 500.0)
    kept = lttb_indices(x, y, 2000)
    assert len(kept) == 2000
    assert kept[0] == 0 and kept[-1] == 99_999
    assert np.all(np.diff(kept) > 0)


def test_a_single_spike_survives_downsampling():
    x = np.arange(50_000, dtype=float)
    y = np.zeros_like(x)
    y[31_337] = 100.0
    xs, ys = downsample(x, y, 500)
    assert 31_337.0 in xs and ys.max() == 100.0


def test_a_dip_survives_as_well_as_a_spike():
    x = np.arange(10_000, dtype=float)
    y = np.ones_like(x)
    y[4_321] = -5.0
    assert 4_321 in lttb_indices(x, y, 100)


def test_a_short_series_is_returned_whole():
    x = np.arange(10, dtype=float)
    assert lttb_indices(x, x * 2, 100).tolist() == list(range(10))
    assert lttb_indices(x, x * 2, 10).tolist() == list(range(10))


def test_uneven_x_such_as_wall_time_is_handled():
    rng = np.random.default_rng(7)
    x = np.cumsum(rng.exponential(1.0, 5_000))
    y = rng.normal(size=5_000)
    kept = lttb_indices(x, y, 300)
    assert len(kept) == 300 and kept[0] == 0 and kept[-1] == 4_999


@pytest.mark.parametrize("n_out", [0, 1, 2])
def test_fewer_than_three_points_out_is_refused(n_out):
    with pytest.raises(ValueError, match="at least 3"):
        lttb_indices(np.arange(10.0), np.arange(10.0), n_out)


def test_x_and_y_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="same length"):
        lttb_indices(np.arange(10.0), np.arange(9.0), 5)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=3, max_size=400),
    st.integers(3, 120),
)
def test_the_vectorised_version_picks_the_same_points_as_the_textbook_loop(values, n_out):
    x = list(range(len(values)))
    kept = lttb_indices(np.array(x, dtype=float), np.array(values), n_out)
    assert kept.tolist() == reference_lttb([float(v) for v in x], values, n_out)
