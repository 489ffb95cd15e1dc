"""`auditor serve` running: open the history read-only, check where it may listen, serve on uvicorn.

The listening socket is bound here, before uvicorn starts, so a refused or busy address is one
line and exit status 2 like every other configuration error (uvicorn would log and exit 1).
"""

from __future__ import annotations

import socket
import sys

import uvicorn

from auditor.config import Config
from auditor.dashboard.app import create_app
from auditor.dashboard.queries import History
from auditor.dashboard.security import access_from, check_bind, parse_bind
from auditor.errors import ConfigError
from auditor.store import Store


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(config: Config, bind: str) -> int:
    """Serve the dashboard until SIGINT or SIGTERM; ConfigError before listening when not allowed."""
    host, port = parse_bind(bind)
    access = access_from(config.serve)
    check_bind(host, access)
    with Store(config.history.database, create=False) as store:
        app = create_app(History(store, config), access)
        sock = listen(host, port)
        shown = f"[{host}]" if ":" in host else host
        print(
            f"auditor: dashboard on http://{shown}:{port}/ (history {store.name}"
            f"{'; access control on' if access.required else ''}); Ctrl-C stops it",
            file=sys.stderr,
            flush=True,
        )
        # no access log: a ?token= in a request line must not end up in a log file
        server = uvicorn.Server(
            uvicorn.Config(
                app, log_level="warning", access_log=False, server_header=False, proxy_headers=False
            )
        )
        server.run(sockets=[sock])
    return 0
