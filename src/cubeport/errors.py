"""Domain errors of the core.

The core raises these plain exceptions and never knows about HTTP or the CLI; the API maps each class to a
status code in one table (`cubeport.api.problems`) and the CLI maps them to exit codes. Every message is
safe to show to a user: it names the thing and the problem, never a traceback or a server secret.
"""


class CubeportError(Exception):
    """Base class of every error Cubeport reports to its users."""


class InputError(CubeportError):
    """The caller's input is wrong: a bad file, option or value. CLI exit code 2, HTTP 400."""


class LimitError(InputError):
    """The request asks for more work than one request may do: `limit` names the budget ("values",
    "seconds"), `maximum` its size. HTTP 422."""

    def __init__(self, message: str, limit: str, maximum: float) -> None:
        super().__init__(message)
        self.limit, self.maximum = limit, maximum


class NotFoundError(CubeportError):
    """A named thing (cube, variable, file) does not exist. CLI exit code 2, HTTP 404."""


class ConflictError(CubeportError):
    """The request conflicts with the current state (e.g. a cube already exists). HTTP 409."""


class StorageError(CubeportError):
    """The storage (local folder or S3) cannot be reached or refused the request. CLI exit code 1, HTTP 503."""


class ConfigError(CubeportError):
    """The configuration is incomplete or contradictory. CLI exit code 2."""


class AuthenticationError(CubeportError):
    """Credentials were given but are not valid (bad password, key or token). HTTP 401."""


class PermissionDeniedError(CubeportError):
    """The caller is known but lacks the role for an action (e.g. admin routes). HTTP 403.

    Not for reading restricted resources: those are hidden, and answer NotFoundError.
    """


class ThrottledError(CubeportError):
    """Too many failed attempts from this account or address. HTTP 429 with Retry-After."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnavailableError(CubeportError):
    """A service Cubeport depends on (e.g. an OIDC provider) cannot be reached. HTTP 503."""
