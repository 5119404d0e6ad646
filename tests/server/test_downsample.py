"""Properties of the history downsampling: bounded, ends kept, extremes kept, order kept."""

from __future__ import annotations

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from autolog.server.query import downsample  # noqa: E402

values = st.one_of(st.floats(allow_nan=False, allow_infinity=True, width=32), st.none())


@settings(max_examples=200, deadline=None)
@given(st.lists(values, min_size=3, max_size=400), st.integers(min_value=2, max_value=60))
def test_downsample_properties(raw: list[float | None], max_points: int) -> None:
    points = [(i, v, 1000 + i) for i, v in enumerate(raw)]
    if len(points) <= max_points:
        return  # the server returns short histories whole
    out = downsample(iter(points), len(points), max_points)
    assert len(out) <= max_points
    assert out[0] == points[0] and out[-1] == points[-1]
    steps = [p[0] for p in out]
    assert steps == sorted(set(steps))  # a subsequence, in order, no repeats
    numbers = [v for v in raw if v is not None]
    kept = [p[1] for p in out]
    if numbers and max_points >= 4:  # room for one bucket's minimum and maximum
        assert min(numbers) in kept and max(numbers) in kept
