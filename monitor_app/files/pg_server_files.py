"""What a PostgreSQL server says about its own files: where they are (so dbmon can watch them when
it runs on the same host), and each setting's context, unit and pending restart (so a config diff
can say whether a change needs a restart, and a change waiting for one becomes an event).

One short connection inside the server's connection budget, with a statement timeout: reading
two catalogue views must never queue behind the application's locks."""

from __future__ import annotations

import psycopg2

from monitor_app.assets.connection_budget import server_key
from monitor_app.errors import DbmonError
from monitor_app.schema.check import postgres_dsn

LOCATION_SETTINGS = ("data_directory", "config_file", "hba_file", "ident_file")
_SETTINGS = "SELECT name, context, unit, vartype, pending_restart FROM pg_settings"


def _connect(connection: dict, password: str | None, timeout: float):
    try:
        return psycopg2.connect(postgres_dsn(connection, password), connect_timeout=max(1, int(timeout)),
                                application_name="dbmon-files",
                                options=f"-c statement_timeout={int(timeout * 1000)} -c lock_timeout=1000")
    except psycopg2.Error as exc:
        raise DbmonError(f"cannot connect to PostgreSQL: {str(exc).strip().splitlines()[0][:300]}") from None


def read_server_files(connection: dict, password: str | None, *, budget, timeout: float) -> dict:
    """{"locations": {setting: path}, "settings": {name: {context, unit, vartype, pending_restart}}}.
    A location the role may not read (it needs pg_read_all_settings) is left out."""
    with budget.connection(server_key(connection), "file locations", lambda: _connect(connection, password, timeout)) as conn:
        try:
            with conn.cursor() as cur:
                cur.execute(_SETTINGS)
                settings = {str(name)[:128]: {"context": context, "unit": unit, "vartype": vartype,
                                               "pending_restart": bool(pending)}
                            for name, context, unit, vartype, pending in cur.fetchmany(2000)}
                locations = {}
                for name in LOCATION_SETTINGS:
                    cur.execute("SELECT current_setting(%s, true)", (name,))
                    value = cur.fetchone()[0]
                    if isinstance(value, str) and value.startswith("/") and len(value) < 4096:
                        locations[name] = value
            conn.rollback()
        except psycopg2.Error as exc:
            raise DbmonError(f"reading pg_settings failed: {str(exc).strip().splitlines()[0][:300]}") from None
    return {"locations": locations, "settings": settings}


def pending_restart(settings: dict) -> list[str]:
    return sorted(name for name, row in settings.items() if row.get("pending_restart"))
