"""The time budget of a request. The HTTP edge starts one per request (`Settings.request_seconds`); the
long loops of the core (chunk reads, renderings) call `check` between steps, so an expensive request
ends with a LimitError that says which budget it used up instead of holding a worker. The budget lives in
a context variable: worker threads that FastAPI starts for a request inherit it, and code outside a request
(CLI, ingestion) has none."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from cubeport.errors import LimitError

_budget: ContextVar[tuple[float, float] | None] = ContextVar("cubeport_deadline", default=None)


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Everything inside, and the threads it starts with its context, may run for `seconds`."""
    token = _budget.set((time.monotonic() + seconds, seconds))
    try:
        yield
    finally:
        _budget.reset(token)


def check(what: str) -> None:
    """LimitError once the current budget is spent; nothing without a budget."""
    budget = _budget.get()
    if budget is not None and time.monotonic() > budget[0]:
        raise LimitError(
            f"{what} took longer than the {budget[1]:g} s one request may take; ask for less "
            "(a smaller area, fewer time steps) or split the request",
            "seconds",
            budget[1],
        )
