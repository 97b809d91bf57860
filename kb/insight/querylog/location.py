"""Which store `KB_QUERY_LOG` names: a file path (SQLite) or a `postgresql://` URL.

Checked when the app starts (`QueryLog.from_settings`), so `mysql://…`, a URL libpq cannot
parse or a folder stops the process with a message naming the variable, instead of every
request quietly failing to log.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from kb.core.settings import Settings, SettingsError, rows
from kb.insight.querylog.store import QueryStore

POSTGRES_SCHEMES = ("postgresql", "postgres")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(//)?")


def _variable() -> str:
    return next(meta.env for name, meta, _, _ in rows(Settings) if name == "query_log_path")


def open_store(location: str | os.PathLike) -> QueryStore:
    """The store for `location`; SettingsError saying what is wrong when it names none."""
    text = os.fspath(location).strip()
    try:
        return _store(text)
    except ValueError as exc:
        raise SettingsError(f"invalid settings: {_variable()}={text!r}: {exc}") from None


def _store(text: str) -> QueryStore:
    if not text:
        raise ValueError("empty; give a file path or a postgresql:// URL")
    scheme = _SCHEME.match(text)
    if scheme and (scheme.group(2) or scheme.group(1).lower() in POSTGRES_SCHEMES):  # a URL, not C:\ or a:b
        if scheme.group(1).lower() not in POSTGRES_SCHEMES:
            raise ValueError(f"the {scheme.group(1)}:// scheme is not supported; use a SQLite file path or a "
                             f"postgresql://user@host:5432/dbname URL")
        try:
            from kb.insight.querylog.postgres_store import PostgresStore
        except ImportError as exc:
            raise ValueError(f"a PostgreSQL query log needs psycopg and psycopg-pool "
                             f"(pip install -r requirements.txt): {exc}") from None
        return PostgresStore(text)
    path = Path(text)
    if path.is_dir():
        raise ValueError("is a folder; name the SQLite file inside it, e.g. querylog.sqlite")
    from kb.insight.querylog.sqlite_store import SqliteStore

    return SqliteStore(path)
