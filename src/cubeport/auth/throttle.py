"""Throttling of password and API-key attempts, per account and client address.

Failures count three ways: for one account from one address (`max_failures`: a user mistyping, or one
client guessing), for one account from any address (`account_max_failures`: guessing spread over many
addresses) and from one address for any account (`address_max_failures`: one client trying many accounts).
So clients behind one proxy, or one office's NAT, do not lock each other out with a few wrong passwords.
Past a limit, each further attempt must wait `lockout_seconds`, doubled for every failure beyond it (capped
at the window). Counts come from the audit log, so they hold across API workers and restarts.
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
        """Raise ThrottledError if this account, address or both together must wait before trying again."""
        now = datetime.now(UTC)
        since = now - timedelta(seconds=self.settings.failure_window_seconds)
        limits: list[tuple[str, str | None, str | None, int]] = []
        if account and address:
            limits.append(("account at this address", account, address, self.settings.max_failures))
        if account:
            limits.append(("account", account, None, self.settings.account_max_failures))
        if address:
            limits.append(("address", None, address, self.settings.address_max_failures))
        for what, user, from_address, limit in limits:
            count, last = self.audit.failures(since=since, user=user, address=from_address)
            if count < limit or last is None:
                continue
            wait = min(
                self.settings.lockout_seconds * 2 ** (count - limit), self.settings.failure_window_seconds
            )
            retry_after = (last + timedelta(seconds=wait) - now).total_seconds()
            if retry_after > 0:
                raise ThrottledError(
                    f"too many failed attempts for this {what}; try again in {int(retry_after) + 1} s",
                    retry_after=int(retry_after) + 1,
                )
