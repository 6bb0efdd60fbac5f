"""`kollie serve`: the HTTP server, and its graceful stop on SIGTERM.

A rolling update sends SIGTERM while load balancers still route to the pod for a moment (the
endpoint change takes time to reach each of them). So the stop goes in this order:

1. /readyz fails, live pages are told to reconnect (to a replica in rotation), and the leader
   gives its Lease up so another replica takes over now rather than when the Lease expires;
2. for `shutdown_delay` seconds every request is still served, over connections closed
   after their answer, so clients open new ones to the replicas in rotation;
3. the listener closes and requests in flight finish;
4. the background work stops, and the process exits within `shutdown_timeout` of SIGTERM
   (keep it below the pod's terminationGracePeriodSeconds).
"""

from __future__ import annotations

import asyncio
import signal

import structlog
from aiohttp import web

from kollie.composition import RUNTIME, SHUTDOWN_GRACE
from kollie.config import Settings

log = structlog.get_logger("kollie")


def in_flight_budget(settings: Settings) -> float:
    """Seconds requests in flight get once the listener has closed: what the timeout leaves
    after the delay and the background work's own stop."""
    return max(1.0, settings.shutdown_timeout - settings.shutdown_delay - SHUTDOWN_GRACE)


async def serve(app: web.Application, *, host: str, port: int, settings: Settings) -> None:
    """Serve `app` until SIGTERM or SIGINT, then stop gracefully (see the module docstring)."""
    runner = web.AppRunner(
        app,
        access_log=None,
        handler_cancellation=True,
        shutdown_timeout=in_flight_budget(settings),
    )
    await runner.setup()
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    try:
        await web.TCPSite(runner, host, port).start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        await stopping.wait()
    except BaseException:
        await runner.cleanup()
        raise
    started = loop.time()
    log.info("shutdown_started", delay=settings.shutdown_delay, timeout=settings.shutdown_timeout)
    try:
        async with asyncio.timeout(settings.shutdown_timeout):
            await app[RUNTIME].drain()
            await asyncio.sleep(settings.shutdown_delay)  # still listening, still serving
            await runner.cleanup()
    except TimeoutError:
        log.error("shutdown_timed_out", timeout=settings.shutdown_timeout)
    log.info("shutdown_done", seconds=round(loop.time() - started, 2))
