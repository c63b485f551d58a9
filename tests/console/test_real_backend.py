"""The console's client and map page against the real backend app (SQLite, uvicorn, HTTP).

Checks that the console's models of the API match what the backend really
serves; the fake API in the other tests only restates the contract.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from backend import crud
from backend.app import create_app
from backend.auth.tokens import create_token
from backend.config import Settings
from backend.db import make_engine, migrate, session_scope
from console import session
from console.api_models import AlertStatus, Health
from console.client import ApiClient, ApiError, NotFoundError
from simulators.fleet_plan import plan_fleet
from tests.console.test_pages import APP, RUN_TIMEOUT_S
from tests.http_server import serve_http


@pytest.fixture
def backend_api(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Serve the real backend app over a migrated SQLite with three registered machines.

    Yields the base URL and an outreach token named ``outreach-north``.
    """
    url = f"sqlite:///{tmp_path / 'console.db'}"
    migrate(url)
    engine = make_engine(url)
    specs = plan_fleet(3, seed=3)
    with session_scope(engine) as db:
        for n, spec in enumerate(specs):
            slots = [slot.as_registration() for slot in spec.slots]
            if n == 0:
                slots[0]["count"] = 0  # an empty naloxone slot: the backend should say so
            crud.register_machine(
                session=db,
                machine_id=spec.machine_id,
                name=spec.name,
                lat=spec.lat,
                lon=spec.lon,
                site=spec.site,
                slots=slots,
            )
        token = create_token(db, name="outreach-north", role="outreach")
    app = create_app(Settings(database_url=url), engine=engine)
    try:
        with serve_http(app) as base_url:
            yield base_url, token
    finally:
        engine.dispose()


def test_client_reads_the_real_api_and_acts_on_an_alert(backend_api: tuple[str, str]) -> None:
    url, token = backend_api
    with ApiClient(url, page_size=2) as anonymous:
        with pytest.raises(ApiError) as refused:
            anonymous.all_machines()
        assert refused.value.status_code == 401
    with ApiClient(url, token=token, page_size=2) as client:
        machines = client.all_machines()
        assert [m.id for m in machines] == ["phl-001", "phl-002", "phl-003"]
        assert machines[0].lat is not None
        assert machines[0].slots[0].count == 0
        assert machines[0].health in {Health.EMPTY, Health.ALARM}
        detail = client.machine("phl-002")
        assert detail.name == machines[1].name
        with pytest.raises(NotFoundError):
            client.machine("phl-999")
        open_alerts = client.alerts(status=AlertStatus.OPEN, machine_id="phl-001")
        assert open_alerts.count >= 1
        alert = open_alerts.data[0]
        client.acknowledge_alert(alert.id)
        acked = client.alerts(status=AlertStatus.ACKNOWLEDGED).data
        assert [(a.id, a.acted_by) for a in acked] == [(alert.id, "outreach-north")]
        client.resolve_alert(alert.id)
        assert alert.id in {a.id for a in client.alerts(status=AlertStatus.RESOLVED).data}


def test_fleet_map_page_draws_the_real_fleet(
    backend_api: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, token = backend_api
    monkeypatch.setattr(session, "make_client", lambda: ApiClient(url, token=token))
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S)
    at.run()
    assert not at.exception
    assert not at.error
    assert {m.label: m.value for m in at.metric}["Machines"] == "3"
    assert at.get("deck_gl_json_chart")[0].proto.json.count('"health_label"') == 3


def test_a_restock_visit_through_the_real_api_clears_the_empty_slot(
    backend_api: tuple[str, str],
) -> None:
    url, token = backend_api
    with ApiClient(url, token=token) as client:
        before = client.machine("phl-001")
        counts = {slot.slot: max(slot.count, slot.par or 0) for slot in before.slots}
        visit = client.record_restock_visit("phl-001", counts)
        assert visit.visited_by == "outreach-north"
        after = client.machine("phl-001")
        assert {s.slot: s.count for s in after.slots} == counts
        assert after.health is Health.OK
        assert client.alerts(status=AlertStatus.OPEN, machine_id="phl-001").count == 0
