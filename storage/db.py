"""Engine, sessions and the one transaction helper that turns driver errors into domain errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker


class StorageError(RuntimeError):
    """The database refused or could not be reached."""


class Conflict(StorageError):
    """A uniqueness or foreign-key rule was broken."""


class InvalidData(StorageError):
    """The database refused a value (e.g. a NUL character in text)."""


class Unavailable(StorageError):
    """The database cannot be reached right now."""


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(conn, _record):  # type: ignore[no-untyped-def]
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # durable across app crashes; fsync at checkpoints
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    session = factory()
    try:
        yield session
        session.commit()
    except IntegrityError as exc:
        _rollback(session)
        raise Conflict(str(exc.orig)) from exc
    except DBAPIError as exc:
        _rollback(session)
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            raise Unavailable(str(exc.orig)) from exc
        if isinstance(exc, DataError):
            raise InvalidData(str(exc.orig)) from exc
        raise
    except BaseException:
        _rollback(session)
        raise
    finally:
        session.close()


def _rollback(session: Session) -> None:
    """Roll back; on a dead connection there is nothing to roll back, and the error in flight matters."""
    try:
        session.rollback()
    except DBAPIError:
        pass
