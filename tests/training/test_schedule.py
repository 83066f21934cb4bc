"""Learning-rate schedules: warm-up, inverse square root, reduce-on-plateau."""

from __future__ import annotations

import math

from training.schedule import LRSchedule


def test_warmup_then_inverse_sqrt() -> None:
    s = LRSchedule("inverse_sqrt", 1e-3, warmup_steps=100)
    assert math.isclose(s.lr(1), 1e-5)
    assert math.isclose(s.lr(100), 1e-3)
    assert math.isclose(s.lr(400), 5e-4)


def test_plateau_decays_after_patience_and_respects_min_lr() -> None:
    s = LRSchedule("plateau", 1e-3, plateau_factor=0.5, plateau_patience=1, min_lr=2e-4)
    assert not s.on_validation(10.0)
    assert not s.on_validation(9.0)  # first miss: within patience
    assert s.on_validation(9.5)  # second miss: decay
    assert math.isclose(s.lr(1000), 5e-4)
    s.on_validation(1.0)
    s.on_validation(1.0)
    s.on_validation(1.0)
    s.on_validation(1.0)
    assert math.isclose(s.lr(1000), 2e-4)  # floor


def test_state_round_trip() -> None:
    s = LRSchedule("plateau", 1e-3)
    for metric in (1.0, 0.5, 0.4, 0.3):
        s.on_validation(metric)
    t = LRSchedule("plateau", 1e-3)
    t.load_state_dict(s.state_dict())
    assert t.lr(50) == s.lr(50) and t.bad == s.bad
