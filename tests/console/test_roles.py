"""Pure role tables: which pages and actions each role gets in the console."""

from __future__ import annotations

import pytest

from console import navigation, roles
from console.roles import Action, PageKey, Role


@pytest.mark.parametrize(
    ("role", "pages"),
    [
        (
            Role.ADMIN,
            ["fleet_map", "alerts", "hotspots", "trends", "restock", "machine", "tokens", "audit",
             "notifications", "admin", "account"],
        ),
        (Role.OUTREACH, ["fleet_map", "alerts", "restock", "machine", "account"]),
        (Role.HEALTH, ["fleet_map", "alerts", "hotspots", "trends", "machine", "account"]),
        (Role.PROVISIONING, ["account"]),
    ],
)
def test_each_role_sees_its_pages_in_navigation_order(role: Role, pages: list[str]) -> None:
    assert [p.value for p in roles.pages_for(role)] == pages
    specs = navigation.pages_for(role)
    assert [s.key.value for s in specs] == pages
    assert all(s.file.is_file() for s in specs)


def test_an_unknown_role_gets_only_its_account() -> None:
    assert roles.parse_role("auditor") is None
    assert roles.parse_role("health") is Role.HEALTH
    assert [s.key for s in navigation.pages_for(None)] == [PageKey.ACCOUNT]


def test_every_page_has_one_file_and_one_url() -> None:
    assert set(navigation.PAGE_SPECS) == set(PageKey)
    assert len({s.url_path for s in navigation.PAGE_SPECS.values()}) == len(PageKey)
    assert navigation.SIGN_IN_FILE.is_file()


def test_machine_work_is_outreach_and_area_work_is_health() -> None:
    assert roles.may(Role.OUTREACH, Action.RECORD_VISIT)
    assert not roles.may(Role.HEALTH, Action.RECORD_VISIT)
    assert not roles.may(Role.OUTREACH, Action.VIEW_HOTSPOTS)
    assert roles.may(Role.HEALTH, Action.VIEW_HOTSPOTS)
    assert roles.may_act_on_alert(Role.OUTREACH, "phl-001")
    assert not roles.may_act_on_alert(Role.OUTREACH, None)
    assert roles.may_act_on_alert(Role.HEALTH, None)
    assert not roles.may_act_on_alert(Role.HEALTH, "phl-001")
    assert roles.may_act_on_alert(Role.ADMIN, None)
    assert roles.may_act_on_alert(Role.ADMIN, "x")
    assert not any(roles.may(Role.PROVISIONING, action) for action in Action)
    assert all(roles.may(Role.ADMIN, action) for action in Action)
    assert roles.may(Role.ADMIN, Action.MANAGE_TOKENS)
    assert not roles.may(Role.OUTREACH, Action.MANAGE_TOKENS)
    assert [r for r in Role if roles.may(r, Action.READ_AUDIT)] == [Role.ADMIN]


def test_every_role_says_what_it_is_for() -> None:
    assert set(roles.PURPOSE) == set(Role)
    assert all(roles.PURPOSE[r] for r in Role)
