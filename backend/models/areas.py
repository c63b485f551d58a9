"""Named areas (neighbourhoods, districts): polygons machines are grouped by."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from backend.models.types import UTCDateTime, utcnow


class NamedArea(SQLModel, table=True):
    """One named polygon; a machine inside it gets its name as ``Machine.area``."""

    __tablename__ = "named_area"

    name: str = Field(primary_key=True, max_length=64)
    # A GeoJSON Polygon or MultiPolygon geometry in WGS 84 (lon, lat), as loaded.
    geometry: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    source: str | None = Field(default=None, max_length=200)
    loaded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
