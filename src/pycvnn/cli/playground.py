"""`pycvnn playground`: serve the playground's web page until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from .args import int_in

if TYPE_CHECKING:
    import socket

    from . import Parser


def port_arg(text: str) -> int:
    return int_in(text, 1, 65535, "a port from 1 to 65535")


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket listening on host:port. Its proto is IPPROTO_TCP, as getaddrinfo gives it:
    asyncio sets TCP_NODELAY only on such sockets, and without it a small response waits
    40 ms on each keep-alive request (Nagle's algorithm against the client's delayed ACK)."""
    import socket

    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(socket.SOMAXCONN)
    except OSError:
        sock.close()
        raise
    return sock


def cmd_playground(args: argparse.Namespace) -> int:
    # The web stack is imported here, not at the top, so the other commands start fast.
    try:
        import uvicorn

        from ..playground.app import create_app
    except ImportError as err:
        print(
            f"pycvnn playground: needs {err.name or 'the web stack'}, which is not installed: "
            "pip install 'pycvnn[playground]'",
            file=sys.stderr,
        )
        return 2
    import threading
    import time
    import webbrowser

    # Listen before printing the URL: a host that does not resolve or a port in use is a
    # one-line error, not a server that announces itself and dies.
    try:
        listener = listen(args.host, args.port)
    except OSError as err:
        reason = os.strerror(err.errno) if err.errno and err.errno > 0 else err.strerror or err
        print(
            f"pycvnn playground: cannot listen on {args.host}:{args.port}: {reason}",
            file=sys.stderr,
        )
        return 1
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{args.port}/"
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(),
            host=args.host,
            port=args.port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
    )

    def open_when_up() -> None:
        while not (server.started or server.should_exit):
            time.sleep(0.05)
        if server.started:
            webbrowser.open(url)

    print(f"pycvnn playground: {url}", flush=True)
    if args.open:
        threading.Thread(target=open_when_up, daemon=True).start()
    try:
        server.run(sockets=[listener])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it shut down on
        pass
    return 0 if server.started else 1


def add_parser(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "playground",
        help="the playground in the browser: train small networks live",
        description="Serve the playground, a local web page that trains small networks on "
        "2-D data sets live on the C++ core, until Ctrl-C (needs pycvnn[playground]).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=port_arg, default=8000, help="port (default 8000)")
    p.add_argument("--open", action="store_true", help="open the page in the web browser")
    p.set_defaults(func=cmd_playground)
