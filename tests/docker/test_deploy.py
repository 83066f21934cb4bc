"""What can be checked of the deployment without a Docker engine: lint, schemas, the entrypoint."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.service.server import free_port
from training.trainer import TrainResult

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = [ROOT / "docker" / "Dockerfile", ROOT / "docker" / "Dockerfile.cuda"]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert path, f"{name} is not installed (it comes with the dev extras)"
    return path


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(
        r"\\\n", " ", "\n".join(ln for ln in dockerfile.read_text().splitlines() if not ln.lstrip().startswith("#"))
    )
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in text.splitlines() if ln.strip()]


def final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    steps = instructions(dockerfile)
    last = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last:]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(dockerfile: Path) -> None:
    r = subprocess.run([tool("hadolint"), "--no-color", str(dockerfile)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_ignore_says_why() -> None:
    for dockerfile in DOCKERFILES:
        lines = dockerfile.read_text().splitlines()
        for i, line in enumerate(lines):
            if "hadolint ignore" in line:
                assert lines[i - 1].startswith("#") and "hadolint" not in lines[i - 1], f"{dockerfile.name}:{i + 1}"


def test_compose_file_matches_the_compose_schema() -> None:
    r = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                        str(ROOT / "docker" / "compose.yaml")], capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr


def test_kubernetes_manifests_match_their_schemas() -> None:
    manifests = sorted((ROOT / "docker" / "k8s").glob("*.yaml"))
    assert {m.name for m in manifests} >= {"deployment.yaml", "deployment-gpu.yaml", "service.yaml", "hpa.yaml",
                                           "configmap.yaml", "translate-job.yaml"}  # fmt: skip
    r = subprocess.run([tool("kubernetes-validate"), "--strict", *map(str, manifests)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copied_files_exist_and_reach_the_build_context(dockerfile: Path) -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = [p[1:].rstrip("/") for p in ignore if p.startswith("!")]
    for op, args in instructions(dockerfile):
        if op == "COPY" and "--from=" not in args:
            *sources, _ = shlex.split(args)
            for src in (s for s in sources if not s.startswith("--")):
                assert (ROOT / src).exists(), f"{dockerfile.name}: COPY {src}: no such file in the repository"
                assert any(src.rstrip("/") == a or src.startswith(a + "/") for a in allowed), f"{src} is dockerignored"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_the_image_entrypoint_serves_outside_docker(tmp_path: Path, models_dir: Path, dockerfile: Path) -> None:
    """Run an image's exact ENTRYPOINT and ENV with the models volume and port remapped: the CUDA image
    too, which must serve on whatever device is here (NMT_DEVICE=auto: a node without a GPU gets the CPU)."""
    stage = final_stage(dockerfile)
    env = dict(os.environ)
    for op, args in stage:
        if op == "ENV":
            for key, value in (pair.split("=", 1) for pair in shlex.split(args)):
                env[key] = value.replace("$PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}").replace(
                    "/opt/venv/bin", str(BIN)
                )
    entrypoint = json.loads(next(a for op, a in stage if op == "ENTRYPOINT"))
    healthcheck = json.loads(next(a for op, a in stage if op == "HEALTHCHECK").split("CMD", 1)[1])
    port = free_port()
    env.update(NMT_MODELS_DIR=str(models_dir), NMT_PORT=str(port), HOME=str(tmp_path))  # the volume and the port
    assert env["NMT_HOST"] == "0.0.0.0"
    proc = subprocess.Popen(entrypoint, env=env, cwd=tmp_path)
    try:
        end = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "the entrypoint exited"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < end, "not ready in 60 s"
            time.sleep(0.1)
        check = [a.replace("8000", str(port)) for a in healthcheck]
        assert subprocess.run(check, env=env).returncode == 0
        r = httpx.post(f"http://127.0.0.1:{port}/translate", json={"q": "a b", "source": "de", "target": "en"})
        assert r.status_code == 200
    finally:
        proc.terminate()
        assert proc.wait(30) == 0


def _jobs() -> list[dict]:
    return [doc for doc in yaml.safe_load_all((ROOT / "docker" / "k8s" / "translate-job.yaml").read_text()) if doc]


def test_translate_jobs_are_indexed_with_retries_per_index() -> None:
    for job in _jobs():
        spec = job["spec"]
        assert spec["completionMode"] == "Indexed" and spec["backoffLimitPerIndex"] >= 1
        container = spec["template"]["spec"]["containers"][0]
        shards = next(e["value"] for e in container["env"] if e["name"] == "SHARDS")
        assert int(shards) == spec["completions"], "SHARDS must equal completions"
        assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_the_translate_job_command_run_per_index_joins_to_the_whole_translation(
    tmp_path: Path, reverse_model: TrainResult
) -> None:
    """The CPU job's exact command, once per JOB_COMPLETION_INDEX, with /data and /models remapped."""
    job = _jobs()[0]
    container = job["spec"]["template"]["spec"]["containers"][0]
    data = tmp_path / "data"
    (data / "in").mkdir(parents=True)
    lines = [" ".join("abcdefghijkl"[(i + j) % 12] for j in range(3 + i % 5)) for i in range(50)]
    (data / "in" / "input.txt").write_text("".join(line + "\n" for line in lines))
    models = tmp_path / "models"
    models.mkdir()
    (models / "de-en").symlink_to(reverse_model.model_dir)
    script = container["command"][2].replace("/data", str(data)).replace("/models", str(models))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env.update({e["name"]: e["value"] for e in container["env"]})
    for index in range(job["spec"]["completions"]):
        r = subprocess.run([*container["command"][:2], script], env={**env, "JOB_COMPLETION_INDEX": str(index)},
                           capture_output=True, text=True, timeout=120)  # fmt: skip
        assert r.returncode == 0, r.stderr
    parts = [data / "out" / f"part.{i}" for i in range(job["spec"]["completions"])]
    joined = "".join(p.read_text() for p in parts)
    whole = subprocess.run([tool("nmt-translate"), "--model", str(models / "de-en"), "--quantize", "int8", "--quiet"],
                           input="".join(line + "\n" for line in lines), capture_output=True, text=True)  # fmt: skip
    assert joined == whole.stdout and len(joined.splitlines()) == 50
