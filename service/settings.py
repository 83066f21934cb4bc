"""Service settings: environment variables prefixed `NMT_`, validated by pydantic-settings.

Defaults live only here. `nmt-serve` flags override the environment; an invalid value fails
at start-up with a message naming the variable.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from nmt.batching import BATCH_TOKENS, default_batch_tokens
from nmt.device import resolve_device
from nmt.dtypes import ALIASES, DtypeName
from nmt.precision import Footprint, FootprintChoice, PrecisionChoice
from nmt.shortlist import ShortlistUse

log = logging.getLogger(__name__)


class Settings(BaseSettings):
    """Everything an operator can set; see the README's table."""

    model_config = SettingsConfigDict(env_prefix="NMT_", extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="address nmt-serve listens on (0.0.0.0: every interface)")
    port: int = Field(8000, ge=1, le=65535, description="port nmt-serve listens on")
    models_dir: Path = Field(Path("models"), description="directory whose subdirectories are model directories")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="where models run")
    precision: PrecisionChoice = Field(
        "auto", description="auto: int8 on x86 CPUs, bf16 (or fp16) on CUDA; or fp32, bf16, fp16, int8"
    )
    # the variables of earlier versions, still honoured: they name a precision when NMT_PRECISION is auto
    quantize: Literal["none", "int8"] | None = Field(None, description="deprecated: NMT_PRECISION=int8")
    dtype: DtypeName | None = Field(None, description="deprecated: NMT_PRECISION for CUDA (fp32, fp16, bf16)")
    shortlist: ShortlistUse = Field(
        "auto", description="search each sentence's vocabulary shortlist where a model has one: auto (on CPUs), on, off"
    )
    footprint: FootprintChoice = Field(
        "auto", description="int8 models' memory: fast (token table, two kernels), lean (about the weights file), "
        "auto: lean where NMT_MAX_MODEL_MEMORY_MB is set, else fast",
    )  # fmt: skip
    max_model_memory_mb: float | None = Field(
        None, gt=0, description="memory the loaded models may take together; beyond it the least recently used "
        "idle model is unloaded (default: no limit)",
    )  # fmt: skip
    preload: bool = Field(True, description="load models at start (as the memory budget allows); false: on first use")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: torch's choice)")
    beam_size: int = Field(5, ge=1, le=16, description="default beam size")
    max_beam_size: int = Field(8, ge=1, le=64, description="largest beam a request may ask for")
    batch_tokens: int | None = Field(
        None, ge=64, description=f"source tokens per batched search (default: {BATCH_TOKENS['cpu']} on a CPU, "
        f"{BATCH_TOKENS['cuda']} on a GPU)",
    )  # fmt: skip
    max_wait_ms: float = Field(20.0, ge=0.0, le=10_000, description="longest a batch waits for batch-mates")
    batching: bool = Field(True, description="false: one request per search (for comparison)")
    queue_limit: int = Field(2048, ge=1, description="queued sentences before requests get 503")
    request_timeout_s: float = Field(30.0, gt=0.0, description="deadline of one request (504 after it)")
    max_texts: int = Field(128, ge=1, description="texts per request")
    max_chars: int = Field(5000, ge=1, description="characters per text")
    max_body_bytes: int = Field(2_000_000, ge=1024, description="request body size, uploaded files too (413 above)")
    max_file_chars: int = Field(100_000, ge=1, description="characters to translate in one uploaded file")
    file_ttl_s: float = Field(900.0, gt=0.0, description="how long a translated file stays downloadable")
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated keys; empty: no authentication"
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated origins allowed by CORS ('*' for any)"
    )
    header_timeout_s: float = Field(10.0, gt=0.0, description="a request's header must arrive within this (408)")
    body_timeout_s: float = Field(
        30.0, gt=0.0, description="a request's body must arrive within this of its header (408)"
    )
    idle_timeout_s: float = Field(5.0, gt=0.0, description="a kept-alive connection idle this long is closed")
    max_connections: int = Field(
        1000, ge=1, description="open connections (lowered to the file-descriptor limit); beyond it the longest "
        "stalled or idle one is closed, or the newcomer gets 503",
    )  # fmt: skip
    drain_timeout_s: float = Field(30.0, ge=0.0, description="on SIGTERM, longest wait for in-flight requests")

    @field_validator("dtype", mode="before")
    @classmethod
    def _dtype_spelling(cls, value: object) -> object:
        return ALIASES.get(value, value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _earlier_variables(self) -> Settings:
        """NMT_QUANTIZE=int8 and NMT_DTYPE (CUDA only, as before) still choose the precision, with a warning."""
        chosen: str | None = None
        if self.quantize == "int8":
            chosen = "int8"
        elif self.dtype is not None and self.on_gpu:
            chosen = self.dtype
        if chosen is not None and self.precision == "auto":
            log.warning("NMT_QUANTIZE and NMT_DTYPE are deprecated: set NMT_PRECISION=%s", chosen)
            object.__setattr__(self, "precision", chosen)  # the settings are frozen once validated
        return self

    @property
    def on_gpu(self) -> bool:
        """Whether models run on a CUDA GPU (NMT_DEVICE=cuda, or auto with one present: `resolve_device`)."""
        return self.device == "cuda" or resolve_device(self.device).type == "cuda"

    @property
    def model_footprint(self) -> Footprint:
        """NMT_FOOTPRINT, where auto is lean under a memory budget (many models in little memory), else fast."""
        if self.footprint != "auto":
            return self.footprint
        return "fast" if self.max_model_memory_mb is None else "lean"

    @property
    def search_tokens(self) -> int:
        """NMT_BATCH_TOKENS, or the budget of the device models run on."""
        return self.batch_tokens or default_batch_tokens("cuda" if self.on_gpu else "cpu")

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value


class SettingsError(Exception):
    """An invalid setting, with a message naming the environment variable."""


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment with explicit overrides (flags); invalid values raise SettingsError."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as err:
        parts = []
        for e in err.errors():
            name = "NMT_" + str(e["loc"][0]).upper() if e["loc"] else "settings"
            parts.append(f"{name}: {e['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(parts)) from None
