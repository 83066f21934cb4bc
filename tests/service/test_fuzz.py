"""Property-based fuzzing from the app's own OpenAPI schema: whatever a client sends, no 5xx, every error JSON.

schemathesis turns each operation of `/openapi.json` into hypothesis strategies, for requests
that fit the schema and requests that break it (wrong types, missing fields, odd strings,
huge numbers), sent to a real `nmt-serve`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.service.server import Server, running

EXAMPLES = 30  # per operation and mode: about 500 requests in all, a minute on 2 cores


@pytest.fixture(scope="module")
def fuzz_server(models_dir: Path) -> Iterator[Server]:
    with running(models_dir, NMT_MAX_WAIT_MS="2") as s:
        yield s


def _operations(server: Server) -> list[schemathesis.schemas.APIOperation]:
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_gets_a_5xx_and_every_error_is_json(fuzz_server: Server, mode: GenerationMode) -> None:
    operations = _operations(fuzz_server)
    expected = {"/v1/translate", "/translate", "/detect", "/languages", "/healthz", "/translate_file"}
    assert {op.path for op in operations} >= expected | {"/download_file/{key}", "/frontend/settings"}
    fuzzed = set()
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            response = case.call(timeout=30)
            where = f"{response.status_code} for {case.as_curl_command()}: {response.text[:300]}"
            assert response.status_code < 500, where
            if response.status_code >= 400:
                assert isinstance(response.json().get("error"), str), where

        try:
            check()
        except Unsatisfiable:  # an operation without inputs (GET /healthz) has nothing to break
            assert mode == GenerationMode.NEGATIVE
            continue
        fuzzed.add(operation.path)
    assert fuzzed >= {"/v1/translate", "/translate", "/detect", "/translate_file"}
    if mode == GenerationMode.POSITIVE:  # any string is a valid key: there is no negative case for it
        assert "/download_file/{key}" in fuzzed
    requests = httpx.get(fuzz_server.url + "/metrics").text.count("nmt_http_requests_total{")
    assert requests >= 10  # distinct (route, method, status) series: the fuzzer reached the app
    assert "Traceback" not in fuzz_server.stderr()
