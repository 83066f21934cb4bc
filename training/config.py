"""Training configuration: YAML validated by pydantic, with dotted command-line overrides.

Defaults live only in these classes; an unknown key or a bad value fails before any work,
with a message naming the field (e.g. `train.batch_tokens`). Relative paths are relative
to the directory the command runs in.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nmt.config import Bridge, Cell, ModelConfig


class ConfigError(Exception):
    """A configuration file or override that cannot be used; the message names the field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Section):
    """Parallel text: plain or gzipped files with one sentence per line."""

    train_src: Path
    train_tgt: Path
    valid_src: Path | None = None
    valid_tgt: Path | None = None
    src_lang: str = Field("de", min_length=1)
    tgt_lang: str = Field("en", min_length=1)
    max_len: int = Field(100, ge=1, description="pairs with more subwords on either side are skipped")
    max_len_ratio: float = Field(3.0, ge=1.0, description="pairs whose length ratio exceeds this are skipped")
    valid_max_sentences: int | None = Field(None, ge=1, description="decode only this many for validation BLEU")

    @model_validator(mode="after")
    def _valid_pair(self) -> DataConfig:
        if (self.valid_src is None) != (self.valid_tgt is None):
            raise ValueError("valid_src and valid_tgt must be given together")
        return self


class TokenizerConfig(_Section):
    """Sentencepiece: reuse existing model file(s), or train from the training data."""

    joint: bool = True
    model: Path | None = Field(None, description="existing joint model (joint: true)")
    src_model: Path | None = Field(None, description="existing source model (joint: false)")
    tgt_model: Path | None = Field(None, description="existing target model (joint: false)")
    vocab_size: int = Field(8000, ge=8)
    model_type: Literal["unigram", "bpe", "char", "word"] = "unigram"
    character_coverage: float = Field(1.0, gt=0.0, le=1.0)
    placeholders: bool = Field(True, description="reserve a piece for each placeholder symbol (nmt.placeholders)")


# the architecture's defaults are the library's
_MODEL: dict[str, Any] = {f.name: f.default for f in fields(ModelConfig)}


class ModelSection(_Section):
    """Architecture; vocabulary sizes come from the tokenizer. Defaults: `nmt.config.ModelConfig`'s."""

    emb_size: int = Field(_MODEL["emb_size"], ge=1)
    enc_hidden: int = Field(_MODEL["enc_hidden"], ge=1, description="per direction")
    enc_layers: int = Field(_MODEL["enc_layers"], ge=1)
    dec_hidden: int = Field(_MODEL["dec_hidden"], ge=1)
    dec_layers: int = Field(_MODEL["dec_layers"], ge=1)
    cell: Cell = _MODEL["cell"]
    dropout: float = Field(_MODEL["dropout"], ge=0.0, lt=1.0)
    input_feed: bool = _MODEL["input_feed"]
    bridge: Bridge = _MODEL["bridge"]
    tie_target_embeddings: bool = _MODEL["tie_target_embeddings"]
    share_embeddings: bool = _MODEL["share_embeddings"]

    def build(self, src_vocab_size: int, tgt_vocab_size: int) -> ModelConfig:
        """The library's architecture value for these vocabulary sizes."""
        return ModelConfig(src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size, **self.model_dump())


class TrainSection(_Section):
    """Optimisation, validation, checkpoints and logging."""

    out_dir: Path = Path("runs/model")
    seed: int = 1234
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: torch's choice)")
    batch_tokens: int = Field(4096, ge=1, description="padded tokens per batch per process")
    accum_steps: int = Field(1, ge=1, description="batches per optimizer step")
    max_steps: int = Field(10000, ge=1)
    max_epochs: int | None = Field(None, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    adam_betas: tuple[float, float] = (0.9, 0.998)
    weight_decay: float = Field(0.0, ge=0.0)
    schedule: Literal["constant", "inverse_sqrt", "plateau"] = "constant"
    warmup_steps: int = Field(0, ge=0)
    plateau_factor: float = Field(0.5, gt=0.0, lt=1.0)
    plateau_patience: int = Field(1, ge=0, description="validations without improvement before decay")
    min_lr: float = Field(1e-5, ge=0.0)
    label_smoothing: float = Field(0.1, ge=0.0, lt=1.0)
    clip_norm: float = Field(5.0, gt=0.0)
    amp: Literal["none", "bf16", "fp16"] = Field(
        "none", description="autocast dtype: on CUDA as given; on CPU bf16 only where the CPU has native bf16"
    )
    valid_every: int = Field(500, ge=1)
    valid_batch_tokens: int = Field(8192, ge=1)
    save_every: int | None = Field(None, ge=1, description="checkpoint interval (default: valid_every)")
    keep_checkpoints: int = Field(3, ge=1)
    patience: int = Field(0, ge=0, description="stop after this many validations without BLEU gain; 0: never")
    log_every: int = Field(50, ge=1)

    @property
    def checkpoint_every(self) -> int:
        """Steps between checkpoints."""
        return self.save_every or self.valid_every


class TrainConfig(_Section):
    """The whole training recipe."""

    data: DataConfig
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    model: ModelSection = Field(default_factory=ModelSection)
    train: TrainSection = Field(default_factory=TrainSection)


def apply_override(tree: dict[str, Any], override: str) -> None:
    """Set `a.b.c=value` in a nested dict; the value is parsed as YAML (numbers, booleans, lists)."""
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {override!r} is not of the form dotted.key=value")
    parts = key.strip().split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {override!r}: {part} is not a section")
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise ConfigError(f"override {override!r}: value is not valid YAML: {err}") from err


def format_errors(err: ValidationError) -> str:
    """One message naming every bad field of a validation error."""
    lines = []
    for item in err.errors():
        field = ".".join(str(p) for p in item["loc"]) or "(top level)"
        message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        lines.append(f"{field}: {message}")
    return "invalid config: " + "; ".join(lines)


def parse_config(tree: dict[str, Any]) -> TrainConfig:
    """Validate a config tree; errors name every bad field."""
    try:
        return TrainConfig.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(format_errors(err)) from None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` laid on `base`, section by section."""
    merged = dict(base)
    for key, value in over.items():
        merged[key] = (
            _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


def read_recipe(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A YAML recipe as a tree; `base: other.yaml` (relative to the file) is read first and overridden."""
    path = Path(path)
    if path.resolve() in seen:
        raise ConfigError(f"config file {path} names itself as a base, through {' -> '.join(map(str, seen))}")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections")
    tree: dict[str, Any] = loaded or {}
    base = tree.pop("base", None)
    if base is None:
        return tree
    if not isinstance(base, str):
        raise ConfigError(f"config file {path}: base must be a file name")
    return _merge(read_recipe(path.parent / base, (*seen, path.resolve())), tree)


def load_config(path: Path | None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read a YAML file (and its base, if it names one) or start empty, apply overrides, validate."""
    tree: dict[str, Any] = read_recipe(path) if path is not None else {}
    for override in overrides:
        apply_override(tree, override)
    return parse_config(tree)
