"""Learning-rate schedules: linear warm-up, then constant, inverse square root, or reduce-on-plateau.

    warm-up:       lr = base * step / warmup                 (step <= warmup)
    inverse_sqrt:  lr = base * sqrt(max(warmup, 1) / step)   (after warm-up)
    plateau:       lr = base * scale; scale *= factor after `patience` validations without gain

Every kind respects `min_lr`. The state is two numbers, saved in checkpoints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class LRSchedule:
    """Computes and applies the learning rate for each optimizer step."""

    kind: str
    base_lr: float
    warmup_steps: int = 0
    plateau_factor: float = 0.5
    plateau_patience: int = 1
    min_lr: float = 0.0
    scale: float = field(default=1.0, init=False)
    best: float | None = field(default=None, init=False)
    bad: int = field(default=0, init=False)

    def lr(self, step: int) -> float:
        """Learning rate for optimizer step `step` (1-based)."""
        factor = 1.0
        if self.warmup_steps and step <= self.warmup_steps:
            factor = step / self.warmup_steps
        elif self.kind == "inverse_sqrt":
            factor = math.sqrt(max(self.warmup_steps, 1) / step)
        lr = self.base_lr * factor * self.scale
        past_warmup = step > self.warmup_steps
        return max(lr, self.min_lr) if past_warmup else lr

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Set the rate of every parameter group for `step`; returns it."""
        lr = self.lr(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def on_validation(self, metric: float) -> bool:
        """Record a validation score (higher is better); returns True when the rate was decayed."""
        if self.best is None or metric > self.best:
            self.best, self.bad = metric, 0
            return False
        self.bad += 1
        if self.kind == "plateau" and self.bad > self.plateau_patience:
            self.scale *= self.plateau_factor
            self.bad = 0
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps."""
        return {"scale": self.scale, "best": self.best, "bad": self.bad}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from a checkpoint."""
        self.scale, self.best, self.bad = state["scale"], state["best"], state["bad"]
