"""One exception root for everything dbmon raises on purpose.

`permanent` tells the task layer whether a retry can help: a refused connection
is transient, a malformed DSN is not.
"""


class DbmonError(Exception):
    permanent = False

    def __init__(self, message: str, *, permanent: bool | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if permanent is not None:
            self.permanent = permanent


class ConfigError(DbmonError):
    """Invalid settings or config file; `errors` holds (field path, message) pairs."""

    permanent = True

    def __init__(self, errors: list[tuple[str, str]], source: str = "config"):
        self.errors = errors
        self.source = source
        lines = "; ".join(f"{path}: {msg}" for path, msg in errors)
        super().__init__(f"{source}: {lines}")


class NotFound(DbmonError):
    permanent = True


class ProbeError(DbmonError):
    """A monitored target could not be reached; retrying later may succeed."""
