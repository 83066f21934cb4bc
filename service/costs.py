"""How long the worker's work takes, learnt as it runs: a line through recent (size, seconds)."""

from __future__ import annotations

import math


class CostModel:
    """How long work of size x takes: seconds = fixed + per_unit * x, fitted to recent observations.

    The batcher observes decoder steps (x: running sentences) and admissions (x: sentences
    encoded, per source position). The time is not proportional to x: a step has a fixed cost,
    so a single rate learnt from small steps would make every estimate too slow, refuse work,
    keep searches small, and so feed itself. The fit is least squares over the recent observations
    (older ones weigh less); until different sizes have been seen it falls back to a rate
    through the origin, and where different sizes took the same time (a GPU's decoder step) the
    cost is fixed.
    """

    DECAY = 0.95  # weight of the previous observations against a new one
    CLIP = 4.0  # an observation counts as at most this many times the estimate (a stall is not a slope)

    def __init__(self) -> None:
        self._w = self._x = self._xx = self._y = self._xy = 0.0

    def observe(self, size: float, seconds: float) -> None:
        """Learn from one step (or admission) of `size` that took `seconds`."""
        if self._w >= 4:  # after a few observations, one stalled step must not tilt the line
            seconds = min(seconds, self.CLIP * self.estimate(size))
        d = self.DECAY
        x = float(size)
        self._w = d * self._w + 1
        self._x = d * self._x + x
        self._xx = d * self._xx + x * x
        self._y = d * self._y + seconds
        self._xy = d * self._xy + x * seconds

    def line(self) -> tuple[float, float]:
        """(fixed seconds, seconds per unit); (0, 0) before the first observation."""
        if self._w == 0:
            return 0.0, 0.0
        spread = self._w * self._xx - self._x * self._x
        if spread > 1e-6 * self._w * self._xx:  # different sizes: fit both terms
            per_unit = (self._w * self._xy - self._x * self._y) / spread
            fixed = (self._y - per_unit * self._x) / self._w
            if per_unit <= 0:
                return self._y / self._w, 0.0
            if fixed >= 0:
                return fixed, per_unit
        return 0.0, self._xy / max(self._xx, 1e-12)

    def estimate(self, size: float, batches: int = 1) -> float:
        """Expected seconds for `batches` steps of `size` in all; 0 before any observation."""
        fixed, per_unit = self.line()
        return batches * fixed + per_unit * size

    def most(self, seconds: float) -> float:
        """The largest size that takes at most `seconds` (infinite before any observation)."""
        fixed, per_unit = self.line()
        return math.inf if per_unit <= 0 else (seconds - fixed) / per_unit
