"""Training data: parallel checks, counted filtering, gzip, seeded token batches."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from nmt.errors import InputError
from nmt.tokenizer import Tokenizer
from training.data import DataError, encode_parallel, epoch_batches, read_parallel, shard_batches


def test_different_line_counts_name_both_files(tmp_path: Path) -> None:
    (tmp_path / "a.de").write_text("eins\nzwei\n")
    (tmp_path / "a.en").write_text("one\n")
    with pytest.raises(DataError, match=r"a\.de has 2 lines but .*a\.en has 1"):
        read_parallel(tmp_path / "a.de", tmp_path / "a.en")


def test_gzip_and_plain_files_read_alike(tmp_path: Path) -> None:
    (tmp_path / "a.src").write_text("a b\nc d\n")
    with gzip.open(tmp_path / "a.tgt.gz", "wt", encoding="utf-8") as handle:
        handle.write("b a\nd c\n")
    assert read_parallel(tmp_path / "a.src", tmp_path / "a.tgt.gz") == (["a b", "c d"], ["b a", "d c"])


def test_missing_and_non_utf8_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_parallel(tmp_path / "x", tmp_path / "y")
    (tmp_path / "bad").write_bytes(b"\xff\xfe\x00bad\n")
    (tmp_path / "good").write_text("fine\n")
    with pytest.raises(InputError, match="not UTF-8"):
        read_parallel(tmp_path / "bad", tmp_path / "good")


def test_filtering_counts_every_skipped_pair(tokenizer: Tokenizer) -> None:
    src = ["a b c", "", "a", "a b c d e f g h i j", "a b", "  "]
    tgt = ["c b a", "x", "a b c d e f", "j i h g f e d c b a", "b a", "b"]
    data = encode_parallel(src, tgt, tokenizer, max_len=8, max_ratio=3.0)
    assert len(data) == 2
    s = data.stats
    assert (s.read, s.kept, s.empty, s.too_long, s.bad_ratio) == (6, 2, 2, 1, 1)
    assert "6 pairs read, 2 kept; skipped 2 empty, 1 too long, 1 over the length ratio" in s.summary("train")


def _data(tokenizer: Tokenizer, corpus: dict[str, tuple[Path, Path]]):
    src, tgt = read_parallel(*corpus["train"])
    return encode_parallel(src, tgt, tokenizer, 100, 3.0)


def test_epoch_batches_are_seeded_within_budget_and_cover_the_data(
    tokenizer: Tokenizer, reverse_corpus: dict[str, tuple[Path, Path]]
) -> None:
    data = _data(tokenizer, reverse_corpus)
    first = epoch_batches(data, 300, seed=7, epoch=1)
    assert first == epoch_batches(data, 300, seed=7, epoch=1)
    assert first != epoch_batches(data, 300, seed=7, epoch=2)
    assert first != epoch_batches(data, 300, seed=8, epoch=1)
    assert sorted(i for b in first for i in b) == list(range(len(data)))
    for batch in first:
        longest = max(max(len(data.src[i]), len(data.tgt[i])) + 1 for i in batch)
        assert longest * len(batch) <= 300
        lengths = {len(data.src[i]) for i in batch}
        assert max(lengths) - min(lengths) <= 1  # bucketed by length


def test_shards_are_disjoint_and_equal(tokenizer: Tokenizer, reverse_corpus: dict[str, tuple[Path, Path]]) -> None:
    batches = epoch_batches(_data(tokenizer, reverse_corpus), 300, seed=1, epoch=1)
    shards = [shard_batches(batches, r, 3) for r in range(3)]
    assert len({len(s) for s in shards}) == 1
    seen = [tuple(b) for s in shards for b in s]
    assert len(seen) == len(set(seen)) == len(batches) - len(batches) % 3
