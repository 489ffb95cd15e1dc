"""`auditor serve` as a user starts it: a real uvicorn process on a free loopback port."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.harness.process_server import ProcessServer, free_port


class Dashboard(ProcessServer):
    """`auditor serve --config CONFIG --bind 127.0.0.1:<free port>`, with `env` added to the environment."""

    label = "auditor serve"
    ready_timeout = 30.0

    def __init__(self, config: Path, env: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.config, self.env, self.port = config, dict(env or {}), free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> Sequence[str]:
        return [
            sys.executable,
            "-m",
            "auditor",
            "serve",
            "--config",
            str(self.config),
            "--bind",
            f"127.0.0.1:{self.port}",
        ]

    def environment(self) -> Mapping[str, str]:
        return {**os.environ, "PYTHONWARNINGS": "ignore", **self.env}
