"""Schemathesis against the OpenAPI document of a running `kollie serve` on the emulator.

Every operation gets requests that fit its schema and requests that break it. Whatever
comes, Kollie answers without a 5xx, and an answer that refuses (4xx) is a JSON error and has
changed nothing: the objects Kollie manages, and its audit Events, are the same before and
after. Bounded: a fixed number of derandomized examples per operation and mode.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from bench.soak.processes import Emulator, Replica, replica_environ
from web.openapi import DOCUMENT

TOKEN = "fuzz-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = 20
WRITTEN_BY_KOLLIE = (
    "/api/v1/namespaces/kollie/configmaps",
    "/api/v1/namespaces/kollie/events",
    "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/kollie/kustomizations",
    "/apis/image.toolkit.fluxcd.io/v1/namespaces/kollie/imagepolicies",
    "/apis/source.toolkit.fluxcd.io/v1/namespaces/kollie/gitrepositories",
)
OPERATIONS = sorted(
    f"{method.upper()} {path}"
    for path, item in DOCUMENT["paths"].items()
    for method in item
    if method in ("get", "put", "post", "delete", "patch")
)


@dataclass(frozen=True)
class Running:
    kollie: str
    emulator: str


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The emulator without simulated Flux (Kollie is the only writer) and one replica."""
    workdir: Path = tmp_path_factory.mktemp("fuzz")
    emulator = Emulator(workdir, flux=False)
    environ = replica_environ(workdir, token=TOKEN, webhook_secret="fuzz-webhook-secret")
    replica = Replica("fuzz", workdir, environ, emulator.kubeconfig)
    try:
        asyncio.run(emulator.start())
        asyncio.run(replica.start())
        for name in ("fuzz-a", "fuzz-b"):  # something for valid requests to find
            r = requests.put(
                f"{replica.url}/api/v1/environments/{name}",
                json={"apps": {"web": {}, "api": {"prefix": "feature-x"}}},
                headers=AUTH,
                timeout=30,
            )
            assert r.status_code == 201, r.text
        yield Running(replica.url, emulator.url)
    finally:
        replica.stop()
        emulator.stop()


def _written(http: requests.Session, emulator: str) -> dict[tuple[str, str], str]:
    """(collection, name) -> resourceVersion of everything Kollie writes."""
    out = {}
    for path in WRITTEN_BY_KOLLIE:
        r = http.get(emulator + path, timeout=30)
        r.raise_for_status()
        for item in r.json()["items"]:
            out[(path, item["metadata"]["name"])] = item["metadata"]["resourceVersion"]
    return out


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("label", OPERATIONS)
def test_no_server_error_and_nothing_written_when_refused(
    running: Running, label: str, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_url(f"{running.kollie}/api/v1/openapi.json")
    operation = schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is in the document the replica serves"
    http = requests.Session()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case) -> None:
        before = _written(http, running.emulator)
        headers = {**(case.headers or {}), **AUTH}
        response = case.call(base_url=running.kollie, headers=headers, timeout=30)
        status = response.status_code
        assert status < 500, f"{case.as_curl_command()} -> {status} {response.text[:500]}"
        if status >= 400:
            body = response.json()
            assert body.get("error") and body.get("message"), response.text[:500]
            assert _written(http, running.emulator) == before, (
                f"refused with {status} but written: {case.as_curl_command()}"
            )

    try:
        check()
    except Unsatisfiable:
        assert mode == GenerationMode.NEGATIVE
        pytest.skip(f"{label} takes no input that could break its schema")
