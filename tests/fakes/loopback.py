"""Serving an ASGI app on loopback for a test: the fake Telegram and Twilio APIs, and the
admin app that the browser tests open."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn


class LoopbackServer:
    """``app`` served by uvicorn on 127.0.0.1, on a free port the OS picks when it binds
    (port 0: no race with another test for the port)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._serving: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> int:
        """Serve until ``stop``; the port it listens on."""
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=0,
            http="h11",
            ws="none",
            lifespan="off",  # the test's fixtures own what the app's lifespan would start
            access_log=False,
            log_config=None,  # leaves the test's logging alone
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._serving = asyncio.create_task(self._server.serve())
        async with asyncio.timeout(10):
            while not self._server.started:
                if self._serving.done():
                    await self._serving  # Re-raises why uvicorn could not start.
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.005)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Stop serving (open requests get two seconds to finish). Safe to call twice."""
        server, serving, self._server, self._serving = self._server, self._serving, None, None
        if server is not None and serving is not None:
            server.should_exit = True
            await serving
