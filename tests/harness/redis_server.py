"""A throwaway redis-server on loopback (Debian's package): no persistence, so a restart loses
every queued message, as a broker crash without persistence does."""

from __future__ import annotations

import shutil

from tests.harness.process_server import ProcessServer, free_port


class RedisServer(ProcessServer):
    label = "redis-server"

    def __init__(self, port: int | None = None) -> None:
        super().__init__()
        self.port = port or free_port()

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]

    def restart(self) -> None:
        """Stop and start again on the same port, empty."""
        self.stop()
        self.start()
