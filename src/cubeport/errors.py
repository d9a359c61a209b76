"""Domain errors of the core.

The core raises these plain exceptions and never knows about HTTP or the CLI; the API maps each class to a
status code in one table (`cubeport.api.problems`) and the CLI maps them to exit codes. Every message is
safe to show to a user: it names the thing and the problem, never a traceback or a server secret.
"""


class CubeportError(Exception):
    """Base class of every error Cubeport reports to its users."""


class InputError(CubeportError):
    """The caller's input is wrong: a bad file, option or value. CLI exit code 2, HTTP 400."""


class NotFoundError(CubeportError):
    """A named thing (cube, variable, file) does not exist. CLI exit code 2, HTTP 404."""


class ConflictError(CubeportError):
    """The request conflicts with the current state (e.g. a cube already exists). HTTP 409."""


class StorageError(CubeportError):
    """The storage (local folder or S3) cannot be reached or refused the request. CLI exit code 1, HTTP 503."""


class ConfigError(CubeportError):
    """The configuration is incomplete or contradictory. CLI exit code 2."""
