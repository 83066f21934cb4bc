"""The model directory: the one format that training writes and everything else loads.

    <dir>/config.json        format version, languages, architecture, special ids,
                             tokenizer files, weights checksum, training summary, metrics
    <dir>/model.safetensors  weights only: loading never unpickles or runs code
    <dir>/spm.model          joint sentencepiece model (or src.spm.model + tgt.spm.model)

Writes are atomic (the directory is built aside and renamed into place). Each format
version older than the current one has an explicit upgrade step in `_UPGRADES`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

import nmt
from nmt.config import ModelConfig
from nmt.dtypes import INT8_STORAGE, storage_name, to_torch
from nmt.errors import ModelLoadError
from nmt.fileio import atomic_directory, atomic_write_text
from nmt.model import Seq2Seq, build_model
from nmt.tokenizer import SpecialIds, Tokenizer

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
SCALE_SUFFIX = ":int8_scale"  # companion of an int8-stored matrix: its scale per row
WEIGHTS_FILE = "model.safetensors"
JOINT_SPM = "spm.model"
SRC_SPM = "src.spm.model"
TGT_SPM = "tgt.spm.model"

# format version N -> function turning a version-N config dict into a version-(N+1) one
_UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


@dataclass(frozen=True)
class ModelInfo:
    """Everything config.json says besides the weights: architecture and metadata."""

    model: ModelConfig
    source_language: str
    target_language: str
    name: str = ""
    special_ids: SpecialIds = field(default_factory=SpecialIds)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        """The id a server or user names the model by, e.g. 'de-en'."""
        return self.name or f"{self.source_language}-{self.target_language}"


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for inference: network in eval mode, tokenizer and metadata."""

    model: Seq2Seq
    tokenizer: Tokenizer
    info: ModelInfo
    path: Path


def _shared_names(model: torch.nn.Module) -> set[str]:
    """Names of parameters that are the same tensor as an earlier name (tied weights)."""
    seen: dict[int, str] = {}
    shared = set()
    for name, param in model.named_parameters(remove_duplicate=False):
        if id(param) in seen:
            shared.add(name)
        else:
            seen[id(param)] = name
    return shared


def save_model_dir(
    path: Path,
    model: Seq2Seq,
    info: ModelInfo,
    tokenizer: Tokenizer,
    dtype: str = "fp32",
    extra_files: dict[str, bytes] | None = None,
) -> None:
    """Write a complete model directory at `path` atomically (weights stored in `dtype`)."""
    shared = _shared_names(model)
    state = {name: t.detach().to("cpu") for name, t in model.state_dict().items() if name not in shared}
    if dtype == INT8_STORAGE:
        tensors = pack_int8(state)
    else:
        tensors = {name: t.to(to_torch(dtype)).contiguous() for name, t in state.items()}
    weights = save_safetensors(tensors, metadata={"format": "pt", "nmt_format_version": str(FORMAT_VERSION)})
    if tokenizer.joint:
        spm_files = {"joint": JOINT_SPM}
        copies = {JOINT_SPM: tokenizer.src_model_path}
    else:
        spm_files = {"source": SRC_SPM, "target": TGT_SPM}
        copies = {SRC_SPM: tokenizer.src_model_path, TGT_SPM: tokenizer.tgt_model_path}
    config = {
        "format_version": FORMAT_VERSION,
        "nmt_version": nmt.__version__,
        "name": info.model_id,
        "source_language": info.source_language,
        "target_language": info.target_language,
        "model": info.model.to_dict(),
        "special_ids": vars(info.special_ids),
        "tokenizer": {"type": "sentencepiece", **spm_files},
        "weights": {"file": WEIGHTS_FILE, "dtype": storage_name(dtype), "sha256": hashlib.sha256(weights).hexdigest()},
        "training": info.training,
        "metrics": info.metrics,
    }
    with atomic_directory(Path(path)) as tmp:
        (tmp / WEIGHTS_FILE).write_bytes(weights)
        for name, source in copies.items():
            shutil.copyfile(source, tmp / name)
        for name, data in (extra_files or {}).items():
            (tmp / name).write_bytes(data)
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_config(path: Path) -> dict[str, Any]:
    """config.json of a model directory, upgraded to the current format version."""
    path = Path(path)
    if not path.is_dir():
        raise ModelLoadError(f"model directory {path} does not exist")
    config_path = path / CONFIG_FILE
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ModelLoadError(f"{path} is not a model directory: {CONFIG_FILE} is missing") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelLoadError(f"{config_path} is not valid JSON: {err}") from err
    version = config.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ModelLoadError(f"{config_path}: missing or invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelLoadError(
            f"{config_path} has format version {version}; this nmt {nmt.__version__} reads up to "
            f"{FORMAT_VERSION}: upgrade nmt"
        )
    while version < FORMAT_VERSION:
        config = _UPGRADES[version](config)
        version = config["format_version"]
    return config


def read_model_info(path: Path) -> ModelInfo:
    """What a model directory's config.json says of it, without loading its weights."""
    return _info_from_config(read_config(path), Path(path))


def _info_from_config(config: dict[str, Any], where: Path) -> ModelInfo:
    try:
        info = ModelInfo(
            model=ModelConfig.from_dict(config["model"]),
            source_language=config["source_language"],
            target_language=config["target_language"],
            name=config.get("name", ""),
            special_ids=SpecialIds(**config["special_ids"]),
            training=config.get("training", {}),
            metrics=config.get("metrics", {}),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise ModelLoadError(f"{where / CONFIG_FILE} is invalid: {err}") from err
    if info.special_ids != SpecialIds():  # search and tokenizer use these ids; a model with others would mistranslate
        raise ModelLoadError(
            f"{where / CONFIG_FILE}: special ids {vars(info.special_ids)} differ from the ids this version uses, "
            f"{vars(SpecialIds())}"
        )
    return info


def pack_int8(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Matrices as int8 with an fp32 scale per row (`NAME` + `SCALE_SUFFIX`); vectors in fp16.

    Symmetric and per row, as the int8 inference path (nmt.quantize) quantizes them, so loading
    and quantizing again finds the same integers.
    """
    packed: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        t = tensor.float()
        if t.dim() < 2:
            packed[name] = t.to(torch.float16).contiguous()
            continue
        rows = t.reshape(t.shape[0], -1)
        scale = rows.abs().amax(dim=1).clamp_min(1e-12) / 127.0
        packed[name] = torch.round(rows / scale[:, None]).clamp(-127, 127).to(torch.int8).reshape(t.shape).contiguous()
        packed[name + SCALE_SUFFIX] = scale.contiguous()
    return packed


def unpack_int8(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Stored tensors as fp32 (int8 matrices times their row scales)."""
    state = {}
    for name, tensor in tensors.items():
        if name.endswith(SCALE_SUFFIX):
            continue
        scale = tensors.get(name + SCALE_SUFFIX)
        if scale is None:
            state[name] = tensor.to(torch.float32)
        else:
            rows = tensor.reshape(tensor.shape[0], -1).to(torch.float32) * scale.to(torch.float32)[:, None]
            state[name] = rows.reshape(tensor.shape)
    return state


def _load_weights(path: Path, config: dict[str, Any]) -> dict[str, torch.Tensor]:
    weights_path = path / WEIGHTS_FILE
    try:
        data = weights_path.read_bytes()
    except FileNotFoundError as err:
        raise ModelLoadError(f"{weights_path} is missing") from err
    expected = config.get("weights", {}).get("sha256")
    if expected and hashlib.sha256(data).hexdigest() != expected:
        raise ModelLoadError(
            f"{weights_path} is corrupted or truncated: its checksum does not match config.json ({len(data)} bytes)"
        )
    try:
        return load_safetensors(data)
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise ModelLoadError(f"{weights_path} is not a valid safetensors file: {err}") from err


def load_model_dir(path: Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> LoadedModel:
    """Load a model directory for inference (eval mode) on `device` in `dtype`."""
    path = Path(path)
    config = read_config(path)
    info = _info_from_config(config, path)
    tok_cfg = config.get("tokenizer", {})
    if "joint" in tok_cfg:
        tokenizer = Tokenizer(path / tok_cfg["joint"])
    else:
        tokenizer = Tokenizer(path / tok_cfg.get("source", SRC_SPM), path / tok_cfg.get("target", TGT_SPM))
    if (tokenizer.src_vocab_size, tokenizer.tgt_vocab_size) != (info.model.src_vocab_size, info.model.tgt_vocab_size):
        raise ModelLoadError(
            f"{path}: tokenizer vocabulary sizes {tokenizer.src_vocab_size}/{tokenizer.tgt_vocab_size} "
            f"do not match the model's {info.model.src_vocab_size}/{info.model.tgt_vocab_size}"
        )
    model = build_model(info.model)
    state = unpack_int8(_load_weights(path, config))
    shared = _shared_names(model)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatch
        raise ModelLoadError(f"{path / WEIGHTS_FILE} does not fit config.json: {err}") from err
    missing = [name for name in missing if name not in shared]
    if missing or unexpected:
        raise ModelLoadError(
            f"{path / WEIGHTS_FILE} does not fit config.json: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    model.to(device=device, dtype=dtype).eval()
    return LoadedModel(model=model, tokenizer=tokenizer, info=info, path=path)


def record_metrics(path: Path, name: str, values: dict[str, Any]) -> None:
    """Store scores under `metrics[name]` in a model directory's config.json (atomically), for `/v1/models`."""
    config = read_config(path)
    config.setdefault("metrics", {})[name] = values
    atomic_write_text(Path(path) / CONFIG_FILE, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
