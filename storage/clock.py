"""The database's clock, as a SQL expression: leases and job timestamps never use a worker's clock.

``db_now()`` is ``now()`` on PostgreSQL (the transaction's start, the same value for every
timestamp a transaction writes) and the current UTC time with microsecond digits on SQLite
(the format SQLAlchemy stores datetimes in, so text comparisons order correctly).
``db_now(-60)`` is sixty seconds earlier: ``heartbeat_at < db_now(-lease)`` is a stale lease
whatever the clock of the worker asking.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DateTime, Float, TypeDecorator, bindparam, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import FunctionElement


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite returns them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value


class db_now(FunctionElement[dt.datetime]):  # noqa: N801 (reads like the SQL function it is)
    """The database's current time plus ``offset_s`` seconds (a bound parameter)."""

    type = UTCDateTime()
    inherit_cache = True
    name = "db_now"

    def __init__(self, offset_s: float = 0.0) -> None:
        super().__init__(bindparam(None, float(offset_s), type_=Float()))


def _offset(element: db_now, compiler: Any, **kw: Any) -> str:
    return compiler.process(list(element.clauses)[0], **kw)


@compiles(db_now, "postgresql")
def _pg_now(element: db_now, compiler: Any, **kw: Any) -> str:
    return f"(now() + make_interval(secs => {_offset(element, compiler, **kw)}))"


@compiles(db_now)
def _sqlite_now(element: db_now, compiler: Any, **kw: Any) -> str:
    return (f"(strftime('%Y-%m-%d %H:%M:%f', 'now', printf('%+.6f seconds', {_offset(element, compiler, **kw)}))"
            " || '000')")


def database_time(session: Session) -> dt.datetime:
    """What the database's clock says now (aware UTC)."""
    value = session.scalar(select(db_now()))
    assert value is not None
    return value.astimezone(dt.UTC)
