"""The config file as a running process uses it: the last version that validated.

A file saved with a typo must not stop monitoring or alerting, nor show a parser's error to
everyone who reads the API. Each process keeps the last good config it read; a copy in the
data directory (mode 0600, it may hold inline passwords like the file itself) covers a
process or pool child that starts after the file broke. Each broken version of the file is
reported once per deployment as a `config.invalid` event, a good file after that as
`config.restored`; the events carry the time, never the errors (viewers read events).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from monitor_app.config.declarative import DbmonConfig, parse_config_text
from monitor_app.errors import ConfigError, DbmonError

log = logging.getLogger("dbmon.config")
COPY_NAME = "config.last-good.yaml"


class ConfigUnavailable(DbmonError):
    """The file is invalid and this process never had a good version: a task retries later."""

    permanent = False


@dataclass(frozen=True)
class ConfigStatus:
    valid: bool
    in_force: str = "file"  # file | last good | none
    loaded_at: datetime | None = None
    invalid_since: datetime | None = None
    errors: tuple[tuple[str, str], ...] = ()
    version: str = ""  # which file version this describes; keys the event so processes record it once


class LastGoodConfig:
    def __init__(self, path: Path | str, data_dir: Path | str):
        self.path = Path(path)
        self.copy = Path(data_dir) / COPY_NAME
        self.status = ConfigStatus(valid=True)
        self._lock = threading.Lock()
        self._config: DbmonConfig | None = None
        self._stat: tuple | None = None
        self._reported = ""

    def current(self) -> tuple[DbmonConfig | None, ConfigStatus | None]:
        """The config in force (None if there never was a good one), and the status to
        report when this call found the file newly broken or newly fixed."""
        stat = _stat(self.path)
        with self._lock:
            if self._config is not None and stat == self._stat:
                return self._config, None
            self._stat = stat
            self._reload(stat)
            if self.status.version == self._reported:
                return self._config, None
            if self.status.valid and not self._reported:
                self._reported = self.status.version  # first load of a good file: nothing to report
                return self._config, None
            self._reported = self.status.version
            return self._config, self.status

    def _reload(self, stat: tuple | None) -> None:
        now = datetime.now(timezone.utc)
        version = hashlib.sha256(f"{self.path.resolve()}|{stat}".encode()).hexdigest()[:32]
        if stat is None:  # no file: an empty config, as on a fresh install
            self._config = DbmonConfig()
            self.status = ConfigStatus(valid=True, loaded_at=now, version=version)
            return
        try:
            text = self.path.read_text()
            config = parse_config_text(text, str(self.path))
        except ConfigError as exc:
            errors = exc.errors
        except (OSError, UnicodeDecodeError) as exc:
            errors = [("(file)", getattr(exc, "strerror", None) or type(exc).__name__)]
        else:
            self._config = config
            self.status = ConfigStatus(valid=True, loaded_at=now, version=version)
            self._save_copy(text)
            return
        if self._config is None:
            self._config = self._from_copy()
        since = datetime.fromtimestamp(stat[0] / 1e9, timezone.utc)
        in_force = "none" if self._config is None else "last good"
        self.status = ConfigStatus(valid=False, in_force=in_force, loaded_at=self.status.loaded_at,
                                   invalid_since=since, errors=tuple(errors), version=version)
        log.error("config file %s is invalid, the %s config stays in force: %s", self.path, in_force,
                  "; ".join(f"{f}: {m}" for f, m in errors))

    def _from_copy(self) -> DbmonConfig | None:
        try:
            return parse_config_text(self.copy.read_text(), str(self.copy))
        except (OSError, ConfigError, UnicodeDecodeError):
            return None

    def _save_copy(self, text: str) -> None:
        try:
            if self.copy.exists() and self.copy.read_text() == text:
                return
            self.copy.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.copy.with_name(f".{COPY_NAME}.{os.getpid()}.{threading.get_ident()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.replace(tmp, self.copy)
        except OSError as exc:
            log.warning("cannot keep a copy of the last good config in %s: %s", self.copy, exc)


def report(store, status: ConfigStatus) -> None:
    """Record the change of validity as an event; never fails the caller."""
    from sqlalchemy.exc import IntegrityError

    from monitor_app.platform.event_log import record_event

    when = (status.loaded_at if status.valid else status.invalid_since) or datetime.now(timezone.utc)
    if status.valid:
        kind, severity, summary = "config.restored", "info", "config file valid again and in force"
        payload = {"loaded_at": when.isoformat()}
    else:
        kind, severity = "config.invalid", "warning"
        summary = (f"config file invalid since {when.isoformat()}; "
                   + ("the last good config stays in force" if status.in_force == "last good"
                      else "no good config was loaded before"))
        payload = {"invalid_since": when.isoformat(), "in_force": status.in_force}
    try:
        with store.session() as s:
            record_event(s, type=kind, severity=severity, summary=summary, payload=payload,
                         dedupe_key=f"{kind}:{status.version}")
    except IntegrityError:
        pass  # another process recorded this very version first
    except Exception:  # noqa: BLE001 - reporting must never take the config away from its reader
        log.warning("could not record the %s event", kind, exc_info=True)


def _stat(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
