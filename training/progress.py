"""Progress of a training run: periodic log lines with speed and ETA, and a CSV of metrics."""

from __future__ import annotations

import csv
import io
import logging
import time
from pathlib import Path

from nmt.fileio import atomic_write_text

log = logging.getLogger("training")

CSV_FIELDS = ["step", "kind", "epoch", "loss", "ppl", "bleu", "lr", "tgt_tokens_per_s", "elapsed_s"]


class Progress:
    """Accumulates step statistics and reports them every `every` steps (rank 0 only)."""

    def __init__(self, out_dir: Path, max_steps: int, every: int, enabled: bool, elapsed: float = 0.0) -> None:
        self.csv_path = Path(out_dir) / "metrics.csv"
        self.max_steps, self.every, self.enabled = max_steps, every, enabled
        self.elapsed_before = elapsed
        self.start = time.monotonic()
        self._reset()

    def _reset(self) -> None:
        self.window_start = time.monotonic()
        self.loss_sum = self.tokens = 0.0
        self.steps = 0

    @property
    def elapsed(self) -> float:
        """Training seconds, including those before a resume."""
        return self.elapsed_before + time.monotonic() - self.start

    def step(self, step: int, epoch: int, loss_sum: float, tokens: float, lr: float) -> None:
        """Record one optimizer step (summed loss and target tokens over all processes)."""
        self.loss_sum += loss_sum
        self.tokens += tokens
        self.steps += 1
        if step % self.every and step != self.max_steps:
            return
        seconds = max(time.monotonic() - self.window_start, 1e-9)
        loss = self.loss_sum / max(self.tokens, 1.0)
        speed = self.tokens / seconds
        eta = (self.max_steps - step) * seconds / max(self.steps, 1)
        if self.enabled:
            log.info(
                "step %d/%d | epoch %d | loss %.3f | lr %.2e | %.0f tgt tok/s | elapsed %s | ETA %s",
                step,
                self.max_steps,
                epoch,
                loss,
                lr,
                speed,
                _hms(self.elapsed),
                _hms(eta),
            )
            self.write(
                {
                    "step": step,
                    "kind": "train",
                    "epoch": epoch,
                    "loss": round(loss, 4),
                    "lr": lr,
                    "tgt_tokens_per_s": round(speed, 1),
                    "elapsed_s": round(self.elapsed, 1),
                }
            )
        self._reset()

    def forget_after(self, step: int) -> None:
        """Drop metrics.csv rows past `step`: on resume they will be logged again (atomic rewrite)."""
        if not self.enabled or not self.csv_path.exists():
            return
        with open(self.csv_path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        kept = [r for r in rows if r.get("step", "").isdigit() and int(r["step"]) <= step]
        if len(kept) == len(rows):
            return
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(kept)
        atomic_write_text(self.csv_path, text.getvalue())

    def write(self, row: dict[str, object]) -> None:
        """Append one row to metrics.csv (header written once)."""
        if not self.enabled:
            return
        new = not self.csv_path.exists()
        with open(self.csv_path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
            if new:
                writer.writeheader()
            writer.writerow(row)


def _hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
