"""The library stays a library: importing it never pulls in a driver or a web framework."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("training", "service", "fastapi", "uvicorn", "starlette", "matplotlib", "tensorboard")


def test_importing_nmt_loads_no_driver_or_web_code() -> None:
    code = (
        "import sys, nmt.translator, nmt.cli, nmt.model_dir, nmt.search, nmt.segment\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = set(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    )
    assert not loaded & set(FORBIDDEN), loaded & set(FORBIDDEN)


def test_the_service_does_not_import_training_code() -> None:
    code = "import sys, service.app, service.cli\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    loaded = set(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    )
    assert "training" not in loaded
