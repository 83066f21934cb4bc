"""The training loop: token batches, Adam with a schedule, validation, early stopping, resume.

One `Trainer` runs in every process of a job. Alone it trains on one device; under torchrun
the model is wrapped in DistributedDataParallel, each process takes its own share of every
epoch's batches, and rank 0 validates and writes checkpoints. A run started again with the
same command continues from its newest checkpoint and reaches the same weights.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from torch.nn.parallel import DistributedDataParallel

from nmt.batching import pad_batch, source_ids, target_io, token_batches
from nmt.device import cpu_has_native_bf16, resolve_device
from nmt.dtypes import to_torch
from nmt.model import Seq2Seq, build_model
from nmt.model_dir import ModelInfo, save_model_dir
from nmt.scoring import corpus_bleu
from nmt.search import SearchOptions
from nmt.tokenizer import PAD_ID, Tokenizer, train_sentencepiece
from nmt.translator import Translator
from training import distributed as dist
from training.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from training.config import TrainConfig
from training.data import DataError, ParallelData, encode_parallel, epoch_batches, read_parallel, shard_batches
from training.progress import Progress
from training.schedule import LRSchedule

log = logging.getLogger("training")


@dataclass
class Position:
    """Where training stands: optimizer steps done and the next batch of the current epoch."""

    step: int = 0
    epoch: int = 1
    batch: int = 0


@dataclass(frozen=True)
class TrainResult:
    """What a finished run produced."""

    steps: int
    best_bleu: float | None
    model_dir: Path
    stopped_early: bool


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def prepare_tokenizer(config: TrainConfig, is_main: bool, info: dist.DistInfo) -> Tokenizer:
    """Existing sentencepiece model(s) from the config, else ones trained on the training data."""
    tok, data, out = config.tokenizer, config.data, config.train.out_dir
    if tok.joint and tok.model is not None:
        return Tokenizer(tok.model)
    if not tok.joint and tok.src_model is not None and tok.tgt_model is not None:
        return Tokenizer(tok.src_model, tok.tgt_model)
    paths = {"joint": out / "spm.model"} if tok.joint else {"src": out / "src.spm.model", "tgt": out / "tgt.spm.model"}
    if is_main and not all(p.exists() for p in paths.values()):
        inputs = {"joint": [data.train_src, data.train_tgt], "src": [data.train_src], "tgt": [data.train_tgt]}
        for name, path in paths.items():
            log.info("training sentencepiece (%s, %d pieces) on %s", tok.model_type, tok.vocab_size, inputs[name])
            train_sentencepiece(
                inputs[name],
                path.with_suffix(""),
                tok.vocab_size,
                tok.model_type,
                tok.character_coverage,
                placeholders=tok.placeholders,
            )
    dist.barrier(info)
    return Tokenizer(paths["joint"]) if tok.joint else Tokenizer(paths["src"], paths["tgt"])


class Trainer:
    """Trains one model from a validated config; see the module docstring."""

    def __init__(self, config: TrainConfig, info: dist.DistInfo | None = None) -> None:
        self.config = config
        tc = config.train
        use_cuda = resolve_device(tc.device).type == "cuda"
        self.info = info or dist.DistInfo()
        self.device = torch.device(f"cuda:{self.info.local_rank}" if use_cuda else "cpu")
        if tc.threads:
            torch.set_num_threads(tc.threads)
        random.seed(tc.seed + self.info.rank)
        torch.manual_seed(tc.seed + self.info.rank)
        if self.info.is_main:
            tc.out_dir.mkdir(parents=True, exist_ok=True)
            (tc.out_dir / "config.yaml").write_text(
                yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), encoding="utf-8"
            )
        # read (and check) the data before sentencepiece trains on it: a missing file or files of
        # different lengths are reported at once, in one line
        train_texts = read_parallel(config.data.train_src, config.data.train_tgt)
        self.valid_texts: tuple[list[str], list[str]] = ([], [])
        if config.data.valid_src is not None and config.data.valid_tgt is not None:
            self.valid_texts = read_parallel(config.data.valid_src, config.data.valid_tgt)
        self.tokenizer = prepare_tokenizer(config, self.info.is_main, self.info)
        self.train_data = self._load(train_texts, "train")
        del train_texts
        if len(self.train_data) == 0:
            raise DataError("no training pairs left after filtering")
        self.valid_data: ParallelData | None = None
        if config.data.valid_src is not None and config.data.valid_tgt is not None:
            self.valid_data = self._load(self.valid_texts, "valid", filter_lengths=False)
        self.model_config = config.model.build(self.tokenizer.src_vocab_size, self.tokenizer.tgt_vocab_size)
        torch.manual_seed(tc.seed)  # identical initial weights in every process
        self.model: Seq2Seq = build_model(self.model_config).to(self.device)
        torch.manual_seed(tc.seed + self.info.rank)
        self.net: torch.nn.Module = self.model
        if self.info.enabled:
            self.net = DistributedDataParallel(self.model, device_ids=[self.device.index] if use_cuda else None)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=tc.lr, betas=tc.adam_betas, weight_decay=tc.weight_decay
        )
        self.schedule = LRSchedule(
            tc.schedule, tc.lr, tc.warmup_steps, tc.plateau_factor, tc.plateau_patience, tc.min_lr
        )
        self.amp_dtype = self._amp_dtype(tc.amp, use_cuda)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.pos = Position()
        self.best_bleu: float | None = None
        self.bad_validations = 0
        self.elapsed_before = 0.0
        self.last_lr = tc.lr
        self._epoch_cache: tuple[int, list[list[int]]] = (0, [])
        self._resume()
        self.progress = Progress(tc.out_dir, tc.max_steps, tc.log_every, self.info.is_main, self.elapsed_before)
        self.progress.forget_after(self.pos.step)  # rows a killed run logged past its last checkpoint

    @staticmethod
    def _amp_dtype(amp: str, use_cuda: bool) -> torch.dtype | None:
        """The autocast dtype: as asked on CUDA; on CPU only bf16, and only where the CPU has it."""
        if amp == "none":
            return None
        if use_cuda:
            return to_torch(amp)
        if amp == "bf16" and cpu_has_native_bf16():
            log.info("train.amp=bf16 on CPU: this CPU multiplies bf16 natively (AVX-512-BF16/AMX)")
            return torch.bfloat16
        log.warning("train.amp=%s needs CUDA or a CPU with native bf16; training in float32", amp)
        return None

    def _load(self, lines: tuple[list[str], list[str]], name: str, filter_lengths: bool = True) -> ParallelData:
        src_lines, tgt_lines = lines
        d = self.config.data
        max_len, ratio = (d.max_len, d.max_len_ratio) if filter_lengths else (10**9, float("inf"))
        data = encode_parallel(src_lines, tgt_lines, self.tokenizer, max_len, ratio)
        if self.info.is_main:
            log.info(data.stats.summary(name))
        return data

    def model_info(self, metrics: dict[str, Any] | None = None) -> ModelInfo:
        """Metadata written into every model directory of this run."""
        d = self.config.data
        training = {
            "train_src": str(d.train_src),
            "train_tgt": str(d.train_tgt),
            "train_pairs_read": self.train_data.stats.read,
            "train_pairs_kept": len(self.train_data),
            "steps": self.pos.step,
            "epoch": self.pos.epoch,
            "config": self.config.model_dump(mode="json"),
        }
        return ModelInfo(self.model_config, d.src_lang, d.tgt_lang, training=training, metrics=metrics or {})

    # ----- resume -------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "position": vars(self.pos).copy(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "rng": dist.gather_objects(self.info, _rng_state()),
            "best_bleu": self.best_bleu,
            "bad_validations": self.bad_validations,
            "elapsed": self.progress.elapsed,
        }

    def _resume(self) -> None:
        found = list_checkpoints(self.config.train.out_dir)
        if not found:
            return
        step, path = found[-1]
        state = load_checkpoint(path, self.model)
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if self.scaler and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        rngs = state["rng"]
        _set_rng_state(rngs[self.info.rank] if self.info.rank < len(rngs) else rngs[0])
        self.pos = Position(**state["position"])
        self.best_bleu, self.bad_validations = state["best_bleu"], state["bad_validations"]
        self.elapsed_before = state["elapsed"]
        if self.info.is_main:
            log.info("resuming from %s (step %d, epoch %d)", path, step, self.pos.epoch)

    # ----- one step -----------------------------------------------------------------------
    def _tensors(self, data: ParallelData, rows: list[int]) -> tuple[torch.Tensor, ...]:
        src, src_len = pad_batch([source_ids(data.src[r]) for r in rows], self.device)
        pairs = [target_io(data.tgt[r]) for r in rows]
        tgt_in, _ = pad_batch([p[0] for p in pairs], self.device)
        tgt_out, _ = pad_batch([p[1] for p in pairs], self.device)
        return src, src_len, tgt_in, tgt_out

    def _loss(self, net: torch.nn.Module, batch: tuple[torch.Tensor, ...], smoothing: float) -> torch.Tensor:
        src, src_len, tgt_in, tgt_out = batch
        with torch.autocast(
            self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None
        ):
            logits = net(src, src_len, tgt_in)
        return F.cross_entropy(
            logits.flatten(0, 1).float(),
            tgt_out.flatten(),
            ignore_index=PAD_ID,
            label_smoothing=smoothing,
            reduction="sum",
        )

    def train_step(self, group: list[list[int]]) -> tuple[float, float]:
        """One optimizer step over a group of batches; returns summed loss and target tokens (global)."""
        tc = self.config.train
        batches = [self._tensors(self.train_data, rows) for rows in group]
        local_tokens = float(sum(int((b[3] != PAD_ID).sum()) for b in batches))
        global_tokens = dist.sum_across(self.info, [local_tokens], self.device)[0]
        lr = self.schedule.apply(self.optimizer, self.pos.step + 1)
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum = 0.0
        for i, batch in enumerate(batches):
            last = i == len(batches) - 1
            sync = contextlib.nullcontext() if last or not self.info.enabled else self.net.no_sync()  # type: ignore[operator]
            with sync:
                loss = self._loss(self.net, batch, tc.label_smoothing)
                # DDP averages gradients over processes: scale so the result is a per-token mean.
                scaled = loss * (self.info.world_size / global_tokens)
                (self.scaler.scale(scaled) if self.scaler else scaled).backward()
            loss_sum += float(loss.detach())
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.clip_norm)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.last_lr = lr
        total_loss = dist.sum_across(self.info, [loss_sum], self.device)[0]
        return total_loss, global_tokens

    # ----- validation ---------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Validation loss, perplexity (no smoothing) and greedy BLEU, computed on rank 0."""
        assert self.valid_data is not None
        self.model.eval()
        try:
            nll = tokens = 0.0
            lengths = [len(s) + 1 for s in self.valid_data.src]
            for rows in token_batches(lengths, self.config.train.valid_batch_tokens):
                batch = self._tensors(self.valid_data, rows)
                nll += float(self._loss(self.model, batch, 0.0))
                tokens += float((batch[3] != PAD_ID).sum())
            loss = nll / max(tokens, 1.0)
            src, ref = self.valid_texts
            limit = self.config.data.valid_max_sentences or len(src)
            translator = Translator(self.model, self.tokenizer, self.device, options=SearchOptions(beam_size=1))
            translations = translator.translate(src[:limit], batch_tokens=self.config.train.valid_batch_tokens)
            hyps = [t.text for t in translations]
            bleu = corpus_bleu(hyps, ref[:limit])
        finally:
            self.model.train()
        return {"loss": loss, "ppl": math.exp(min(loss, 50.0)), "bleu": bleu}

    def _after_validation(self, metrics: dict[str, float]) -> bool:
        """Keep the best model, adjust the schedule; True when early stopping says stop."""
        tc = self.config.train
        bleu = metrics["bleu"]
        improved = self.best_bleu is None or bleu > self.best_bleu
        if improved:
            self.best_bleu, self.bad_validations = bleu, 0
            save_model_dir(tc.out_dir / "best", self.model, self.model_info(self._metrics(metrics)), self.tokenizer)
        else:
            self.bad_validations += 1
        if self.schedule.on_validation(bleu):
            log.info("validation BLEU did not improve: learning rate scale now %.3g", self.schedule.scale)
        log.info(
            "validation step %d | loss %.3f | ppl %.2f | BLEU %.2f | best %.2f%s",
            self.pos.step,
            metrics["loss"],
            metrics["ppl"],
            bleu,
            self.best_bleu or 0.0,
            " (new best, saved)" if improved else f" ({self.bad_validations} without gain)",
        )
        self.progress.write(
            {
                "step": self.pos.step,
                "kind": "valid",
                "epoch": self.pos.epoch,
                "loss": round(metrics["loss"], 4),
                "ppl": round(metrics["ppl"], 3),
                "bleu": round(bleu, 2),
                "elapsed_s": round(self.progress.elapsed, 1),
            }
        )
        return bool(tc.patience and self.bad_validations >= tc.patience)

    def _metrics(self, metrics: dict[str, float]) -> dict[str, Any]:
        return {"valid_bleu": round(metrics["bleu"], 2), "valid_ppl": round(metrics["ppl"], 3), "step": self.pos.step}

    # ----- the loop -----------------------------------------------------------------------
    def _checkpoint(self) -> None:
        state = self._state()  # every process joins the RNG gather
        if self.info.is_main:
            save_checkpoint(
                self.config.train.out_dir,
                self.pos.step,
                self.model,
                self.model_info(),
                self.tokenizer,
                state,
                self.config.train.keep_checkpoints,
            )
        dist.barrier(self.info)

    def _epoch(self) -> list[list[int]]:
        """This process's batches of the current epoch (built once per epoch)."""
        tc = self.config.train
        if self._epoch_cache[0] != self.pos.epoch:
            batches = shard_batches(
                epoch_batches(self.train_data, tc.batch_tokens, tc.seed, self.pos.epoch),
                self.info.rank,
                self.info.world_size,
            )
            if not batches:
                raise DataError("an epoch has no batch for every process: use more data or fewer processes")
            self._epoch_cache = (self.pos.epoch, batches)
        return self._epoch_cache[1]

    def train(self) -> TrainResult:
        """Run until max_steps, max_epochs or early stopping; returns where the model is."""
        tc = self.config.train
        self.net.train()
        stop = False
        saved_step = self.pos.step
        while not stop and self.pos.step < tc.max_steps:
            if tc.max_epochs is not None and self.pos.epoch > tc.max_epochs:
                break
            batches = self._epoch()
            group = batches[self.pos.batch : self.pos.batch + tc.accum_steps]
            loss_sum, tokens = self.train_step(group)
            self.pos.step += 1
            self.pos.batch += len(group)
            if self.pos.batch >= len(batches):
                self.pos.epoch, self.pos.batch = self.pos.epoch + 1, 0
            self.progress.step(self.pos.step, self.pos.epoch, loss_sum, tokens, self.last_lr)
            if self.valid_data is not None and self.pos.step % tc.valid_every == 0:
                if self.info.is_main:
                    stop = self._after_validation(self.validate())
                stop = bool(dist.broadcast_object(self.info, stop))
            if self.pos.step % tc.checkpoint_every == 0:
                self._checkpoint()
                saved_step = self.pos.step
        if saved_step != self.pos.step:
            self._checkpoint()
        best_dir = tc.out_dir / "best"
        if self.info.is_main and (self.valid_data is None or not best_dir.exists()):
            save_model_dir(best_dir, self.model, self.model_info(), self.tokenizer)
        dist.barrier(self.info)
        if self.info.is_main:
            log.info(
                "done: %d steps, best validation BLEU %s, model in %s",
                self.pos.step,
                "n/a" if self.best_bleu is None else f"{self.best_bleu:.2f}",
                best_dir,
            )
        return TrainResult(self.pos.step, self.best_bleu, best_dir, stopped_early=stop)
