"""The documented shapes of the public feed (OpenAPI); the bytes come from feed.py."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Naloxone = Literal["available", "out", "unknown"]

NALOXONE_HELP = (
    "available: the machine is online, was heard from recently and a naloxone slot is not "
    "empty; out: online and recent, but no naloxone slot holds any; unknown: offline or not "
    "heard from recently"
)


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PublicMachine(_Closed):
    """One machine in the public feed."""

    id: str = Field(description="Opaque public id, stable for the machine's lifetime")
    name: str
    lat: float
    lon: float
    opening_hours: str | None = Field(description="Free text, as the operator wrote it")
    naloxone: Naloxone = Field(description=NALOXONE_HELP)


class PublicMachines(_Closed):
    """Every machine in service with a public listing."""

    machines: list[PublicMachine]


class PointGeometry(_Closed):
    type: Literal["Point"]
    coordinates: list[float] = Field(min_length=2, max_length=2,
                                     description="[longitude, latitude]")


class PublicFeatureProperties(_Closed):
    name: str
    opening_hours: str | None
    naloxone: Naloxone = Field(description=NALOXONE_HELP)


class PublicFeature(_Closed):
    type: Literal["Feature"]
    id: str
    geometry: PointGeometry
    properties: PublicFeatureProperties


class PublicFeatureCollection(_Closed):
    """The public feed as a GeoJSON FeatureCollection (RFC 7946)."""

    type: Literal["FeatureCollection"]
    features: list[PublicFeature]


class PublicListing(_Closed):
    """What the public feed shows of one machine, as an admin sets it."""

    machine_id: str
    public_id: str | None = Field(description="Given when the machine first gets a public name")
    public_name: str | None
    opening_hours: str | None
    in_service: bool
    listed: bool = Field(description="In the public feed now: active, in service and named")
