"""Every write route declares what it records in the audit trail."""

from __future__ import annotations

from backend.api.audited import AUDITED_WRITES
from backend.api.policy import POLICY, PUBLIC
from backend.app import create_app
from backend.config import Settings


def test_every_write_route_says_what_it_records(migrated_url: str) -> None:
    app = create_app(Settings(environment="test", database_url=migrated_url))
    paths = app.openapi()["paths"]
    writes = {(method.upper(), path) for path, ops in paths.items() for method in ops
              if method.upper() in {"POST", "PUT", "PATCH", "DELETE"}}
    anonymous = {key for key, access in POLICY.items() if access is PUBLIC}
    assert sorted(writes - anonymous - set(AUDITED_WRITES)) == [], \
        "write routes without an entry in backend/api/audited.py"
    assert sorted(set(AUDITED_WRITES) - writes) == [], "entries for routes that do not exist"
    for actions in AUDITED_WRITES.values():
        assert actions, "a write route records at least one action"
