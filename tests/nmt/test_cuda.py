"""The CUDA paths: what `auto` picks there, half precision with and without the shortlist, batch independence.

Skipped without a GPU (CI has none); run on a lent GPU machine (see docs/benchmarks.md).
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
import torch

from nmt.search import SearchOptions
from nmt.translator import Translator
from tests.synthetic import SYMBOLS
from training.shortlist import main as build_shortlist
from training.trainer import TrainResult

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(SYMBOLS) for _ in range(rng.randint(1, 9))) for _ in range(n)]


@pytest.fixture(scope="module")
def shortlisted(tmp_path_factory: pytest.TempPathFactory, reverse_model: TrainResult, reverse_corpus) -> Path:
    model = tmp_path_factory.mktemp("cuda") / "model"
    shutil.copytree(reverse_model.model_dir, model)
    src, tgt = reverse_corpus["train"]
    assert build_shortlist(["--model", str(model), "--src", str(src), "--tgt", str(tgt), "--frequent", "2"]) == 0
    return model


def test_auto_runs_half_precision_on_the_gpu(shortlisted: Path) -> None:
    translator = Translator.from_dir(shortlisted, device="auto")
    assert translator.device.type == "cuda"
    assert translator.precision == ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    assert next(translator.model.parameters()).dtype in (torch.bfloat16, torch.float16)
    assert translator.shortlist is None  # auto: GPUs search the whole vocabulary faster


@pytest.mark.parametrize("precision", ["bf16", "fp16", "fp32"])
@pytest.mark.parametrize("shortlist", ["on", "off"])
def test_the_gpu_translates_like_the_cpu(shortlisted: Path, precision: str, shortlist: str) -> None:
    texts = _texts(40, seed=3)
    cpu = Translator.from_dir(shortlisted, device="cpu", precision="fp32", shortlist=shortlist).translate(texts)
    gpu = Translator.from_dir(shortlisted, device="cuda", precision=precision, shortlist=shortlist)
    assert (gpu.shortlist is not None) == (shortlist == "on")
    got = gpu.translate(texts, SearchOptions(beam_size=4))
    assert sum(g.text == c.text for g, c in zip(got, cpu, strict=True)) >= 38


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_a_sentence_gets_the_same_text_alone_or_batched_on_the_gpu(shortlisted: Path, precision: str) -> None:
    translator = Translator.from_dir(shortlisted, device="cuda", precision=precision)
    texts = _texts(30, seed=5)
    options = SearchOptions(beam_size=5)
    alone = [translator.translate([t], options)[0].text for t in texts]
    for budget in (64, 100_000):
        assert [t.text for t in translator.translate(texts, options, batch_tokens=budget)] == alone
