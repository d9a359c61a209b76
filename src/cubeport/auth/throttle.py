"""Throttling of password and API-key attempts, per account and per client address.

After `max_failures` failures in the window, each further attempt must wait `lockout_seconds`, doubled
for every failure beyond the limit (capped at the window). Counts come from the audit log, so they hold
across API workers and restarts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cubeport.auth.audit import AuditLog
from cubeport.config import AuthSettings
from cubeport.errors import ThrottledError


class Throttle:
    def __init__(self, audit: AuditLog, settings: AuthSettings) -> None:
        self.audit = audit
        self.settings = settings

    def check(self, *, account: str | None, address: str | None) -> None:
        """Raise ThrottledError if this account or address must wait before trying again."""
        now = datetime.now(UTC)
        since = now - timedelta(seconds=self.settings.failure_window_seconds)
        for what, value in (("account", account), ("address", address)):
            if not value:
                continue
            count, last = self.audit.failures(
                since=since, **{"user" if what == "account" else "address": value}
            )
            if count < self.settings.max_failures or last is None:
                continue
            wait = min(
                self.settings.lockout_seconds * 2 ** (count - self.settings.max_failures),
                self.settings.failure_window_seconds,
            )
            retry_after = (last + timedelta(seconds=wait) - now).total_seconds()
            if retry_after > 0:
                raise ThrottledError(
                    f"too many failed attempts for this {what}; try again in {int(retry_after) + 1} s",
                    retry_after=int(retry_after) + 1,
                )
