"""`kollie env up|down|status` against a running Kollie, as a CI job would run it."""

from __future__ import annotations

import asyncio
import sys

from tests.helpers import eventually
from tests.service.conftest import TOKEN, Kollie


async def _cli(kollie: Kollie, *args: str) -> tuple[int, str, str]:
    base = str(kollie.server.make_url("/"))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kollie.cli",
        "env",
        "--url",
        base,
        "--token",
        TOKEN,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_up_waits_until_ready_then_down(kollie: Kollie) -> None:
    code, out, err = await _cli(
        kollie,
        "up",
        "ci-env",
        "--bundle",
        "storefront",
        "--app",
        "web=feature-checkout",
        "--wait",
        "--timeout",
        "60s",
    )
    assert code == 0, (out, err)
    assert "created ci-env" in out and "ci-env is ready" in out
    assert "web: http://web.ci-env.test.example.com/" in out
    code, out, _ = await _cli(
        kollie, "up", "ci-env", "--bundle", "storefront", "--app", "web=feature-checkout"
    )
    assert code == 0 and "updated ci-env" in out, "up is idempotent"
    code, out, _ = await _cli(kollie, "status", "ci-env")
    assert code == 0 and "feature-checkout" in out
    code, out, _ = await _cli(kollie, "down", "ci-env")
    assert code == 0 and "being deleted" in out
    await eventually(
        lambda: "ci-env" not in kollie.services.cache.environment_names(),
        message="the deletion to reach the cache",
    )
    code, out, _ = await _cli(kollie, "down", "ci-env")
    assert code == 0


async def test_up_fails_with_the_flux_message(kollie: Kollie) -> None:
    flux = kollie.cluster.flux
    flux.fail("kollie", "broken-api", "Health check failed after 30s: deployment api not ready")
    code, out, _ = await _cli(
        kollie,
        "up",
        "broken",
        "--app",
        "api",
        "--wait",
        "--timeout",
        "20s",
        "--failure-grace",
        "1s",
    )
    assert code == 1, out
    assert "Health check failed after 30s: deployment api not ready" in out


async def test_bad_input_and_unreachable(kollie: Kollie) -> None:
    code, _, err = await _cli(kollie, "up", "Bad_Name", "--app", "api")
    assert code == 2 and "422" in err
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kollie.cli",
        "env",
        "--url",
        "http://127.0.0.1:9",
        "status",
        "x",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err_bytes = await process.communicate()
    assert process.returncode == 2 and b"cannot reach Kollie" in err_bytes


async def test_status_and_a_failed_wait_say_why(kollie: Kollie) -> None:
    # The demo registry holds `fix-login-<sha>` for admin, without its timestamp.
    code, out, _ = await _cli(
        kollie,
        "up",
        "login-fix",
        "--app",
        "admin=fix-login",
        "--wait",
        "--timeout",
        "20s",
        "--failure-grace",
        "1s",
    )
    assert code == 1, out
    assert "    why: CI pushed `fix-login-" in out
    assert "    cause: ImagePolicy kollie/login-fix-admin: Failure: " in out
    assert "      [ok] ImageRepository flux-system/admin: scanned " in out
    assert "      [BROKEN] ImagePolicy kollie/login-fix-admin: Failure: " in out
    assert "      flux get image policy login-fix-admin -n kollie" in out
    code, out, _ = await _cli(kollie, "status", "login-fix")
    assert code == 1
    assert "admin" in out and "    why: CI pushed `fix-login-" in out


async def test_a_wait_that_times_out_says_why(kollie: Kollie) -> None:
    # Flux is slow today: nothing it does lands within the wait, so nothing has Failed yet.
    kollie.cluster.flux.reconcile_delay = 3600
    code, out, _ = await _cli(kollie, "up", "slow", "--app", "api", "--wait", "--timeout", "3s")
    assert code == 1, out
    assert "slow not ready after 3s:" in out
    assert "  api: Progressing " in out
    assert "    why: Flux has not picked an image tagged `main-<sha>-<timestamp>` yet." in out
    assert "      [...] ImagePolicy kollie/slow-api: " in out
    assert "      flux get image policy slow-api -n kollie" in out
