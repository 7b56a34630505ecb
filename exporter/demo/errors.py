"""The demo's error answers: Devin's `{"detail": ...}`, FastAPI's 422, RFC 9457 problems."""

from __future__ import annotations

from aiohttp import web


def error(status: int, detail: str) -> web.Response:
    """Devin's plain error: `{"detail": "..."}`."""
    return web.json_response({"detail": detail}, status=status)


def invalid(loc: list[str], msg: str, kind: str) -> web.Response:
    """A 422 in FastAPI's HTTPValidationError shape, for one location."""
    body = {"detail": [{"loc": loc, "msg": msg, "type": kind}]}
    return web.json_response(body, status=422)


def problem(status: int, title: str, detail: str) -> web.Response:
    """An RFC 9457 problem, keeping `detail` as Devin's ProblemDetail does."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return web.json_response(body, status=status, content_type="application/problem+json")
