"""Record machines in the backend's database through ``backend.crud`` (the one writer)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from backend import crud
from backend.config import Settings
from backend.db import SchemaOutOfDateError, check_schema, make_engine


class RegistryError(RuntimeError):
    """The machine could not be recorded (database unreachable, not migrated, bad data)."""


@contextmanager
def session(settings: Settings) -> Iterator[Session]:
    """Yield a write session on the configured database (RegistryError if unusable)."""
    engine = make_engine(settings.database_url, immediate=True,  # it writes beside ingest
                         dead_link_s=settings.database_dead_link_s)
    try:
        # Refuse to write into a database this code does not understand.
        check_schema(engine)
        with Session(engine) as db:
            yield db
    except SchemaOutOfDateError as exc:
        raise RegistryError(str(exc)) from exc
    except SQLAlchemyError as exc:
        raise RegistryError(f"database {settings.database_url} failed: {exc}") from exc
    finally:
        engine.dispose()


def register(settings: Settings, *, machine_id: str, name: str, lat: float, lon: float,
             actor: str, site: str | None = None, area: str | None = None) -> None:
    """Create or update the machine's row (idempotent, audited; no area keeps the old one)."""
    with session(settings) as db:
        try:
            crud.register_machine(session=db, machine_id=machine_id, name=name,
                                  lat=lat, lon=lon, site=site, area=area, actor=actor)
        except ValueError as exc:
            raise RegistryError(f"cannot register {machine_id}: {exc}") from exc


def deactivate(settings: Settings, *, machine_id: str, actor: str) -> bool:
    """Mark the machine inactive (its history stays); return whether it was registered."""
    with session(settings) as db:
        try:
            crud.deactivate_machine(session=db, machine_id=machine_id, actor=actor)
        except crud.NotFoundError:
            return False
    return True
