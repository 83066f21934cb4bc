"""Ray Data batch translation on a local Ray instance with 2 actors: the same lines as `nmt-translate`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs.ray_translate import translate_files
from nmt.errors import NMTError
from training.trainer import TrainResult

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
TRANSLATE = str(Path(sys.executable).parent / "nmt-translate")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    # 2 actors of one logical CPU each, and one for Ray Data's read tasks (threads: torch's own)
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _files(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    first = [" ".join("abcdefghijkl"[(i * 7 + j) % 12] for j in range(2 + i % 7)) for i in range(300)]
    first[5] = first[77] = ""  # empty lines keep their place
    second = ["a b c", "l k", "", "d e f g h i", "j"]
    (folder / "one.txt").write_text("".join(line + "\n" for line in first), encoding="utf-8")
    (folder / "two.txt").write_text("\r\n".join(second), encoding="utf-8")  # CRLF, no final newline
    return [folder / "one.txt", folder / "two.txt"]


def test_two_actors_translate_each_file_in_line_order_like_nmt_translate(
    local_ray: None, reverse_model: TrainResult, tmp_path: Path
) -> None:
    inputs = _files(tmp_path / "in")
    counts = translate_files(inputs, tmp_path / "out", reverse_model.model_dir, actors=2, batch_size=32)
    assert counts == {tmp_path / "out" / "one.txt": 300, tmp_path / "out" / "two.txt": 5}
    for path in inputs:
        want = subprocess.run([TRANSLATE, "--model", str(reverse_model.model_dir), "--input", str(path), "--quiet"],
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
        assert (tmp_path / "out" / path.name).read_text(encoding="utf-8") == want


def test_user_errors_are_one_line(local_ray: None, reverse_model: TrainResult, tmp_path: Path) -> None:
    with pytest.raises(NMTError, match="no such file"):
        translate_files([tmp_path / "missing.txt"], tmp_path / "out", reverse_model.model_dir)
    with pytest.raises(NMTError, match="does not exist"):
        translate_files(_files(tmp_path / "in"), tmp_path / "out", tmp_path / "no-model")


def test_the_command_reports_user_errors_in_one_line(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "jobs.ray_translate", "--model", str(tmp_path / "no-model"),
                        "--output-dir", str(tmp_path / "out"), str(tmp_path / "missing.txt")],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0 and "no such file" in r.stderr, r.stderr


def test_a_folder_of_models_and_a_pair_pick_the_route(models_dir: Path, tmp_path: Path) -> None:
    from jobs.ray_translate import check_inputs

    inputs = _files(tmp_path / "in")
    assert check_inputs(inputs, models_dir, "fr", "en") == [models_dir / "fr-en"]
    with pytest.raises(NMTError, match="de->fr is not supported"):
        check_inputs(inputs, models_dir, "de", "fr")
    with pytest.raises(NMTError, match="name the pair"):
        check_inputs(inputs, models_dir)


def test_an_interrupted_run_resumes_and_writes_the_same_bytes(
    local_ray: None, reverse_model: TrainResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver dies after some chunks are durable; the same call again continues from them."""
    from nmt.resume import ChunkPlan, ResumableWriter

    inputs = _files(tmp_path / "in")
    straight = translate_files(inputs, tmp_path / "straight", reverse_model.model_dir, actors=2, batch_size=32)
    monkeypatch.setattr(ChunkPlan, "max_lines", 100)  # commit every 100 lines of a file
    commit = ResumableWriter.commit
    calls = {"n": 0}

    def dying(self: ResumableWriter, lines: int) -> None:
        commit(self, lines)
        if lines:
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt  # as a kill would, after 200 durable lines of one.txt

    monkeypatch.setattr(ResumableWriter, "commit", dying)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        translate_files(inputs, out, reverse_model.model_dir, actors=2, batch_size=32)
    assert not (out / "one.txt").exists() and (out / ".one.txt.partial").exists()
    monkeypatch.setattr(ResumableWriter, "commit", commit)
    counts = translate_files(inputs, out, reverse_model.model_dir, actors=2, batch_size=32)
    assert counts == {out / "one.txt": 300, out / "two.txt": 5} and len(straight) == 2
    for path in inputs:
        assert (out / path.name).read_bytes() == (tmp_path / "straight" / path.name).read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["one.txt", "two.txt"]
