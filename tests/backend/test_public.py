"""The public locator feed over real HTTP: exact fields, availability, ETag, CORS, GeoJSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from geojson_pydantic import FeatureCollection
from sqlalchemy import Engine, event
from sqlmodel import Session

from backend import crud
from backend.app import create_app
from backend.config import Settings
from backend.db import make_engine
from backend.ingest.parse import Message
from backend.ingest.store import BatchWriter
from backend.models import MachineListingUpdate, utcnow
from backend.public.schemas import PublicFeatureCollection, PublicMachines
from firmware_agent.wire import payloads
from firmware_agent.wire.topics import Channel, machine_topic
from tests.backend.helpers import events_topic, vend
from tests.http_server import serve_http
from tests.waiting import wait_until

FEED = "/public/v1/machines"
GEOJSON_FEED = "/public/v1/machines.geojson"
MACHINE_KEYS = {"id", "name", "lat", "lon", "opening_hours", "naloxone"}
PROPERTY_KEYS = {"name", "opening_hours", "naloxone"}
CACHE_S = 0.05
OFFLINE_TIMEOUT_S = 600.0


@pytest.fixture
def settings(migrated_url: str) -> Settings:
    return Settings(environment="test", database_url=migrated_url, public_feed_cache_s=CACHE_S,
                    offline_timeout_s=OFFLINE_TIMEOUT_S)


@pytest.fixture
def client(settings: Settings) -> Iterator[httpx.Client]:
    with serve_http(create_app(settings)) as base_url, \
            httpx.Client(base_url=base_url, timeout=10) as http:
        yield http


def _listing(engine: Engine, machine_id: str, **changes: object) -> str | None:
    """Change a machine's listing in its own write transaction; return its public id."""
    with Session(engine) as session:
        machine = crud.update_public_listing(
            session=session, machine_id=machine_id,
            changes=MachineListingUpdate.model_validate(changes), actor="test")
        return machine.public_id


def _publish(engine: Engine, machine_id: str, name: str, hours: str | None = None) -> str:
    public_id = _listing(engine, machine_id, public_name=name, opening_hours=hours)
    assert public_id is not None
    return public_id


def _register(engine: Engine, machine_id: str, slots: list[dict[str, object]], *,
              name: str = "x", lat: float = 40.7, lon: float = -74.0,
              site: str | None = None, area: str | None = None) -> None:
    with Session(engine) as session:
        crud.register_machine(session=session, machine_id=machine_id, name=name, lat=lat,
                              lon=lon, site=site, area=area, slots=slots, actor="test")


def _naloxone(count: int) -> list[dict[str, object]]:
    return [{"slot": 1, "product": "naloxone-nasal-4mg", "capacity": 10, "count": count,
             "low_threshold": 2}]


def _write(engine: Engine, *messages: Message) -> None:
    with Session(engine) as session:
        BatchWriter(default_low_threshold=2).write(session, list(messages), utcnow())
        session.commit()


def _status(machine_id: str, state: payloads.MachineState) -> Message:
    body = payloads.Status(machine_id=machine_id, boot_id=1, state=state, firmware="fw-9.9.9")
    return Message(machine_topic(machine_id, Channel.STATUS), body.to_bytes(), utcnow())


def _heartbeat(machine_id: str, *, age_s: float = 0.0) -> Message:
    received = utcnow() - timedelta(seconds=age_s)
    body = payloads.Telemetry(machine_id=machine_id, boot_id=1, device_time=received,
                              uptime_s=60, temperature_c=21.5, firmware="fw-9.9.9")
    return Message(machine_topic(machine_id, Channel.TELEMETRY), body.to_bytes(), received)


def _online(engine: Engine, machine_id: str, *, age_s: float = 0.0) -> None:
    _write(engine, _status(machine_id, payloads.MachineState.ONLINE),
           _heartbeat(machine_id, age_s=age_s))


def _by_id(client: httpx.Client) -> dict[str, dict[str, object]]:
    response = client.get(FEED)
    assert response.status_code == 200, response.text
    return {m["id"]: m for m in response.json()["machines"]}


def test_fields_are_exactly_the_documented_ones_and_nothing_private_leaks(
    client: httpx.Client, engine: Engine
) -> None:
    _register(engine, "secret-017", _naloxone(7), name="Depot back door, key with Sam",
              lat=40.712345, lon=-74.006789, site="site-internal-42", area="district-9")
    _online(engine, "secret-017")
    public_id = _publish(engine, "secret-017", "Main Street Library", "Mo-Fr 09:00-18:00")
    response = client.get(FEED)
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"machines"}
    [machine] = body["machines"]
    assert machine == {"id": public_id, "name": "Main Street Library", "lat": 40.712345,
                       "lon": -74.006789, "opening_hours": "Mo-Fr 09:00-18:00",
                       "naloxone": "available"}
    PublicMachines.model_validate(body)  # the documented schema, extra fields forbidden
    geo = client.get(GEOJSON_FEED)
    for raw in (response.text, geo.text):
        for private in ("secret-017", "Depot back door", "site-internal-42", "district-9",
                        "fw-9.9.9", "21.5", "naloxone-nasal-4mg", "capacity", "count",
                        "last_seen", "status", "alert"):
            assert private not in raw, private
    assert public_id != "secret-017"
    assert len(public_id) >= 16


def test_each_availability_state_and_who_is_listed(
    client: httpx.Client, engine: Engine
) -> None:
    machines = {
        "test-001": "available",  # online, heard now, naloxone in stock
        "test-002": "out",  # online, heard now, naloxone slot empty; other products stocked
        "test-003": "unknown",  # offline (Last Will), stock still on the books
        "test-004": "unknown",  # online but not heard from for longer than the offline timeout
        "test-005": "unknown",  # never reported at all
        "test-006": "out",  # online, carries no naloxone product at all
    }
    for machine_id in machines:
        strips: list[dict[str, object]] = [
            {"slot": 2, "product": "fentanyl-test-strips", "capacity": 10, "count": 9}]
        naloxone = [] if machine_id == "test-006" else _naloxone(
            0 if machine_id == "test-002" else 5)
        _register(engine, machine_id, naloxone + strips)
    _online(engine, "test-001")
    _online(engine, "test-002")
    _online(engine, "test-003")
    _write(engine, _status("test-003", payloads.MachineState.OFFLINE))
    _online(engine, "test-004", age_s=OFFLINE_TIMEOUT_S + 60)
    _online(engine, "test-006")
    # Not listed: no public name; out of service; deactivated (revoked).
    for machine_id in ("test-007", "test-008", "test-009"):
        _register(engine, machine_id, _naloxone(5))
        _online(engine, machine_id)
    ids = {machine_id: _publish(engine, machine_id, f"Place {machine_id}")
           for machine_id in [*machines, "test-008", "test-009"]}
    _listing(engine, "test-008", in_service=False)
    with Session(engine) as session:
        crud.deactivate_machine(session=session, machine_id="test-009", actor="test")
    feed = _by_id(client)
    assert {ids[m]: state for m, state in machines.items()} == {
        k: v["naloxone"] for k, v in feed.items()}
    # A vend that empties the last naloxone dose turns "available" into "out".
    _register(engine, "test-001", _naloxone(1))
    _write(engine, Message(events_topic("test-001"), vend("test-001", 1).to_bytes(), utcnow()))
    wait_until(lambda: _by_id(client)[ids["test-001"]]["naloxone"] == "out",
               what="the empty slot to show as out")
    # Back in service: listed again under the same public id.
    assert _listing(engine, "test-008", in_service=True) == ids["test-008"]
    wait_until(lambda: ids["test-008"] in _by_id(client), what="test-008 listed again")


def test_etag_answers_304_until_the_feed_changes(
    client: httpx.Client, engine: Engine
) -> None:
    _register(engine, "test-001", _naloxone(1))
    _online(engine, "test-001")
    public_id = _publish(engine, "test-001", "Harbour Clinic", "24/7")
    first = client.get(FEED)
    etag = first.headers["etag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    assert first.headers["cache-control"] == "public, max-age=10"
    again = client.get(FEED, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == "public, max-age=10"
    # Weak comparison and lists, as browsers and proxies send them.
    assert client.get(FEED, headers={"If-None-Match": f'"nope", W/{etag}'}).status_code == 304
    assert client.get(FEED, headers={"If-None-Match": '"nope"'}).status_code == 200
    geo = client.get(GEOJSON_FEED)
    assert geo.headers["etag"] != etag  # another representation, another tag
    assert client.get(GEOJSON_FEED, headers={"If-None-Match": geo.headers["etag"]}
                      ).status_code == 304
    _write(engine, Message(events_topic("test-001"), vend("test-001", 1).to_bytes(), utcnow()))

    def changed() -> bool:
        response = client.get(FEED, headers={"If-None-Match": etag})
        return response.status_code == 200 and response.headers["etag"] != etag

    wait_until(changed, what="a new ETag after the last dose was taken")
    assert _by_id(client)[public_id]["naloxone"] == "out"


def test_gzip_once_per_snapshot_with_its_own_etag(
    client: httpx.Client, engine: Engine
) -> None:
    _register(engine, "test-001", _naloxone(3))
    _online(engine, "test-001")
    _publish(engine, "test-001", "Harbour Clinic", "24/7")
    plain = client.get(FEED, headers={"Accept-Encoding": "identity"})
    packed = client.get(FEED, headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.json() == plain.json()  # httpx decompresses
    for response in (plain, packed):
        assert "Accept-Encoding" in response.headers["vary"]
    assert packed.headers["etag"] != plain.headers["etag"]
    again = client.get(FEED, headers={"Accept-Encoding": "gzip",
                                      "If-None-Match": packed.headers["etag"]})
    assert again.status_code == 304
    assert "content-encoding" not in again.headers
    # A tag of the other coding does not validate this one.
    assert client.get(FEED, headers={"Accept-Encoding": "identity",
                                     "If-None-Match": packed.headers["etag"]}).status_code == 200


def test_cors_is_open_for_public_reads_only(client: httpx.Client) -> None:
    origin = {"Origin": "https://community-map.example"}
    for path in (FEED, GEOJSON_FEED):
        response = client.get(path, headers=origin)
        assert response.headers["access-control-allow-origin"] == "*"
        assert "etag" in response.headers["access-control-expose-headers"].lower()
        assert "access-control-allow-credentials" not in response.headers
    preflight = client.options(FEED, headers={**origin, "Access-Control-Request-Method": "GET",
                                              "Access-Control-Request-Headers": "if-none-match"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-methods"] == "GET"
    assert preflight.headers["access-control-allow-origin"] == "*"
    refused = client.options(FEED, headers={**origin, "Access-Control-Request-Method": "POST"})
    assert refused.status_code == 400
    assert "POST" not in refused.headers.get("access-control-allow-methods", "")
    private = client.get("/api/v1/alerts", headers=origin)
    assert "access-control-allow-origin" not in private.headers
    assert client.options("/api/v1/alerts", headers={
        **origin, "Access-Control-Request-Method": "GET"}).status_code == 405


def test_geojson_is_a_valid_feature_collection(
    client: httpx.Client, engine: Engine
) -> None:
    for n, machine_id in enumerate(("test-001", "test-002")):
        _register(engine, machine_id, _naloxone(n))
        _online(engine, machine_id)
        _publish(engine, machine_id, f"Place {n}", "24/7" if n else None)
    plain = client.get(FEED).json()["machines"]
    response = client.get(GEOJSON_FEED)
    assert response.headers["content-type"] == "application/geo+json"
    collection = FeatureCollection.model_validate_json(response.content)  # RFC 7946 shapes
    PublicFeatureCollection.model_validate_json(response.content)  # and nothing else
    assert len(collection.features) == 2
    for feature, machine in zip(json.loads(response.content)["features"], plain, strict=True):
        assert feature["id"] == machine["id"]
        assert feature["geometry"] == {"type": "Point",
                                       "coordinates": [machine["lon"], machine["lat"]]}
        assert set(feature["properties"]) == PROPERTY_KEYS
        assert feature["properties"]["naloxone"] == machine["naloxone"]
    assert [f["properties"]["naloxone"] for f in json.loads(response.content)["features"]] == [
        "out", "available"]


def test_load_does_not_reach_the_database(migrated_url: str, engine: Engine) -> None:
    _register(engine, "test-001", _naloxone(3))
    _publish(engine, "test-001", "Harbour Clinic")
    reader = make_engine(migrated_url)
    statements: list[str] = []
    event.listen(reader, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))  # args[2] is the SQL text
    settings = Settings(environment="test", database_url=migrated_url, public_feed_cache_s=60)
    app = create_app(settings, engine=reader)
    try:
        with serve_http(app) as base_url, httpx.Client(base_url=base_url, timeout=10) as http:
            before = len(statements)
            for _ in range(50):
                assert http.get(FEED).status_code == 200
                assert http.get(GEOJSON_FEED).status_code == 200
            reads = [s for s in statements[before:] if s.lstrip().upper().startswith("SELECT")]
    finally:
        reader.dispose()
    assert len(reads) == 2, reads  # one listing read (machines, naloxone slots) for 100 requests


def test_openapi_documents_both_representations(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    plain, geo = paths[FEED]["get"], paths[GEOJSON_FEED]["get"]
    assert set(plain["responses"]) == set(geo["responses"]) == {"200", "304", "503"}
    assert "application/json" in plain["responses"]["200"]["content"]
    assert "application/geo+json" in geo["responses"]["200"]["content"]
