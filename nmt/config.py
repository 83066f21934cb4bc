"""The model architecture as one frozen value: what config.json's "model" section holds.

Modules take plain typed arguments; `nmt.model.build_model` is the one reader of this value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

Cell = Literal["lstm", "gru"]
Bridge = Literal["dense", "zero"]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the attention encoder-decoder; defaults are the reference recipe."""

    src_vocab_size: int
    tgt_vocab_size: int
    emb_size: int = 256
    enc_hidden: int = 256  # per direction; the encoder output is 2 * enc_hidden wide
    enc_layers: int = 2
    dec_hidden: int = 512
    dec_layers: int = 2
    cell: Cell = "lstm"
    dropout: float = 0.3
    input_feed: bool = True
    bridge: Bridge = "dense"
    tie_target_embeddings: bool = False  # generator weight = target embedding
    share_embeddings: bool = False  # one embedding table for source and target (joint vocab)

    def __post_init__(self) -> None:
        for name in ("src_vocab_size", "tgt_vocab_size", "emb_size", "enc_hidden", "dec_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be positive, got {getattr(self, name)}")
        for name in ("enc_layers", "dec_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be at least 1, got {getattr(self, name)}")
        if self.cell not in ("lstm", "gru"):
            raise ValueError(f"model.cell must be 'lstm' or 'gru', got {self.cell!r}")
        if self.bridge not in ("dense", "zero"):
            raise ValueError(f"model.bridge must be 'dense' or 'zero', got {self.bridge!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.share_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ValueError("model.share_embeddings needs a joint vocabulary (equal sizes)")

    @property
    def memory_size(self) -> int:
        """Width of the encoder outputs (both directions concatenated)."""
        return 2 * self.enc_hidden

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dictionary."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from a dictionary; unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(unknown)}")
        return cls(**data)
