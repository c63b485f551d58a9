"""Record machines in the backend's database through ``backend.crud`` (the one writer)."""

from __future__ import annotations

import importlib
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from backend.config import Settings


class RegistryError(RuntimeError):
    """The machine could not be recorded (no crud layer, database not migrated, ...)."""


def _crud() -> Any:
    try:
        return importlib.import_module("backend.crud")
    except ImportError as exc:
        raise RegistryError(f"backend.crud is not available: {exc}") from exc


def register(settings: Settings, *, machine_id: str, name: str, lat: float, lon: float,
             site: str | None = None) -> None:
    """Create or update the machine's row (idempotent)."""
    from sqlmodel import Session

    from backend.db import make_engine

    crud = _crud()
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            crud.register_machine(session=session, machine_id=machine_id, name=name,
                                  lat=lat, lon=lon, site=site)
            session.commit()
    except (SQLAlchemyError, ValueError) as exc:
        raise RegistryError(
            f"could not register {machine_id} in {settings.database_url}: {exc} "
            "(has `nx-backend migrate` been run?)"
        ) from exc
    finally:
        engine.dispose()


def deactivate(settings: Settings, *, machine_id: str) -> bool:
    """Mark the machine inactive; return whether it was known."""
    from sqlmodel import Session

    from backend.db import make_engine

    crud = _crud()
    function = getattr(crud, "deactivate_machine", None) or getattr(crud, "deactivate", None)
    if function is None:
        raise RegistryError("backend.crud has no deactivate_machine()")
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            result = function(session=session, machine_id=machine_id)
            session.commit()
    finally:
        engine.dispose()
    return result is not None and result is not False
