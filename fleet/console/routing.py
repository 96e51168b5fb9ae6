"""What every route module of the console shares, kept apart from the app so that the app
imports its routes and no route imports the app back: the refusal a handler raises (turned
into a page or a JSON error by the app) and the test for an API request."""

from __future__ import annotations

from starlette.requests import Request

from fleet.console import auth

__all__ = ["Refused", "is_api"]


class Refused(Exception):
    def __init__(self, status: int, reason: str, who: auth.Principal | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.who = who  # logged in but refused: the page keeps its navigation and Log out


def is_api(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or path in ("/events", "/metrics")
