"""The playground's ASGI app (Starlette): the JSON API under /api/ and the page's files.

Training, boundaries and session set-up run in worker threads, never on the event loop, so
a health check answers while sessions train. Every error is JSON {"error": "<field>: ..."}.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable, TypeVar, cast

import anyio
import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import __version__
from .._types import FloatArray
from . import config as cfg
from .session import Session, SessionError, Store

STATIC = Path(__file__).parent / "static"
BODY_LIMIT = 64 * 1024
MESSAGE_LIMIT = 300  # characters of an error message; a client's long value is cut short
T = TypeVar("T")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _significant(a: FloatArray, digits: int = 4) -> FloatArray:
    """a rounded to `digits` significant digits of its largest magnitude: short JSON."""
    finite = np.abs(a[np.isfinite(a)])
    top = float(finite.max()) if finite.size else 0.0
    decimals = digits - 1 - (math.floor(math.log10(top)) if top > 0 else 0)
    return np.round(a, min(max(decimals, 0), 12))


def json_response(content: Any, status: int = 200) -> Response:
    body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status_code=status, media_type="application/json")


def error_response(status: int, message: str) -> Response:
    if len(message) > MESSAGE_LIMIT:
        message = message[: MESSAGE_LIMIT - 3] + "..."
    return json_response({"error": message}, status)


async def read_json(request: Request) -> Any:
    """The request's JSON body ({} when empty), refused past BODY_LIMIT bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > BODY_LIMIT:
        raise ApiError(400, f"body: expected at most {BODY_LIMIT} bytes, got {int(declared)}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > BODY_LIMIT:
            raise ApiError(400, f"body: expected at most {BODY_LIMIT} bytes, got more")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise ApiError(400, f"body: expected JSON, got invalid JSON ({err})") from None


async def off_loop(limiter: anyio.CapacityLimiter, fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) in a worker thread once the limiter lets it; a bad setting it finds becomes
    a 400."""
    try:
        return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)
    except (cfg.ConfigError, SessionError) as err:
        raise ApiError(400, str(err)) from None


def _size(request: Request) -> int:
    text = request.query_params.get("size", "64")
    lo, hi = cfg.LIMITS["size"]
    size = int(text) if text.isascii() and text.isdigit() else None
    if size is None or not lo <= size <= hi:
        raise ApiError(400, f"size: expected an int from {lo} to {hi}, got {text!r}")
    return size


def _epochs(body: object) -> int:
    if not isinstance(body, dict):
        raise ApiError(400, f"body: expected a JSON object, got {type(body).__name__}")
    extra = sorted(set(body) - {"epochs"})
    if extra:
        raise ApiError(400, f"{extra[0]}: unknown field; expected one of ['epochs']")
    value = body.get("epochs", 1)
    lo, hi = cfg.LIMITS["epochs"]
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ApiError(400, f"epochs: expected an int from {lo} to {hi}, got {value!r}")
    return value


def create_app(capacity: int = 32) -> Starlette:
    """The app, with its own store of at most `capacity` sessions."""
    store = Store(capacity)
    # Computations run on all cores but one, which stays free for the event loop: more
    # threads would only queue for the GIL between epochs, and the loop's answers with them.
    limiter = anyio.CapacityLimiter(max(1, (os.cpu_count() or 1) - 1))

    def session_of(request: Request) -> Session:
        session_id = request.path_params["id"]
        try:
            return store.get(session_id)
        except KeyError:
            raise ApiError(
                404, f"session: no session {session_id!r} (it may have expired)"
            ) from None

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def health(request: Request) -> Response:
        return json_response({"ok": True, "version": __version__})

    async def options(request: Request) -> Response:
        return json_response(cfg.options())

    def create(body: object) -> str:
        session = Session(cfg.parse(body))
        store.add(session)
        return session.id

    async def new_session(request: Request) -> Response:
        session_id = await off_loop(limiter, create, await read_json(request))
        return json_response({"id": session_id}, 201)

    async def show(request: Request) -> Response:
        return json_response(await off_loop(limiter, session_of(request).describe))

    async def delete(request: Request) -> Response:
        try:
            store.delete(request.path_params["id"])
        except KeyError:
            session_of(request)  # raises the 404
        return Response(status_code=204)

    async def patch(request: Request) -> Response:
        session = session_of(request)
        body = await read_json(request)
        await off_loop(limiter, session.update, body)
        return json_response(
            {"id": session.id, "config": session.config, "max_epochs": session.max_epochs()}
        )

    async def train(request: Request) -> Response:
        session = session_of(request)
        epochs = _epochs(await read_json(request))
        return json_response(await off_loop(limiter, session.train, epochs))

    def frame(session: Session, size: int) -> bytes:
        result = session.boundary(size)
        result["output"] = _significant(result["output"])
        result["neurons"] = _significant(result["neurons"])
        return orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY)

    async def boundary(request: Request) -> Response:
        session, size = session_of(request), _size(request)
        body = await off_loop(limiter, frame, session, size)
        return Response(body, media_type="application/json")

    # Starlette types every handler as taking an Exception; it calls each only with its
    # own class, hence the casts.
    async def api_error(request: Request, exc: Exception) -> Response:
        error = cast(ApiError, exc)
        return error_response(error.status, str(error))

    async def http_error(request: Request, exc: Exception) -> Response:
        error = cast(HTTPException, exc)
        return error_response(error.status_code, f"path: {request.url.path}: {error.detail}")

    async def server_error(request: Request, exc: Exception) -> Response:
        return error_response(500, f"server: {type(exc).__name__}: {exc}")

    routes = [
        Route("/", index),
        Route("/api/health", health),
        Route("/api/options", options),
        Route("/api/sessions", new_session, methods=["POST"]),
        Route("/api/sessions/{id}", show, methods=["GET"]),
        Route("/api/sessions/{id}", delete, methods=["DELETE"]),
        Route("/api/sessions/{id}", patch, methods=["PATCH"]),
        Route("/api/sessions/{id}/train", train, methods=["POST"]),
        Route("/api/sessions/{id}/boundary", boundary, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    handlers = {ApiError: api_error, HTTPException: http_error, Exception: server_error}
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.state.store = store
    return app
