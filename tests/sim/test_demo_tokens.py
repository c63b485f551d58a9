"""The demo's tokens: one per role in the database, printed with what each is for."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, select

from backend.auth.principal import Role
from backend.auth.tokens import authenticate_token, list_tokens
from backend.db import make_engine, migrate
from backend.models import AuditRecord
from simulators.cli import _banner
from simulators.demo import DemoUrls
from simulators.demo_tokens import ConsoleSignIn, console_line, create_demo_tokens, token_lines


def test_one_working_token_per_role_named_after_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    migrate(url)
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            tokens = create_demo_tokens(session)
            assert set(tokens) == set(Role)
            assert len(set(tokens.values())) == len(Role)
            rows = list_tokens(session)
            assert sorted((r.name, r.role) for r in rows) == sorted(
                (f"demo-{role.value}", role.value) for role in Role
            )
            for role, secret in tokens.items():
                principal = authenticate_token(session, secret, touch_after_s=60.0)
                assert principal is not None
                assert (principal.name, principal.role) == (f"demo-{role.value}", role)
            audited = session.exec(select(AuditRecord)).all()
            assert sorted((a.actor, a.action, a.object_id) for a in audited) == sorted(
                ("demo", "token.create", f"demo-{role.value}") for role in Role
            )
            assert not [a for a in audited if any(s in str(a.after) for s in tokens.values())]
    finally:
        engine.dispose()


def test_the_banner_prints_each_token_with_its_role_and_purpose() -> None:
    tokens = {role: f"nxt_secret_{role.value}" for role in Role}
    urls = DemoUrls(
        api="http://127.0.0.1:8000",
        docs="http://127.0.0.1:8000/docs",
        console="http://127.0.0.1:8501",
        broker="mqtt://127.0.0.1:1883",
        logs=Path("var/demo/logs"),
        tokens=tokens,
        console_role=Role.ADMIN,
    )
    text = _banner(urls, 24)
    assert "http://127.0.0.1:8501  (signed in as admin; sign out to switch)" in text
    lines = text.splitlines()
    for role, secret in tokens.items():
        (line,) = [x for x in lines if secret in x]
        assert line.split()[:2] == [role.value, secret]
        assert len(line.split(secret, 1)[1].strip()) > 10  # what the token is for
    assert "Authorization: Bearer <token>" in text
    assert text.count("nxt_secret_") == len(Role)


def test_console_line_says_whether_the_console_is_signed_in() -> None:
    assert console_line(None, Role.ADMIN) == "  console   (not started)"
    assert "sign-in page" in console_line("http://c", None)
    assert "signed in as health" in console_line("http://c", Role.HEALTH)
    assert token_lines({}) == []


def test_console_role_option_maps_to_a_role_or_the_sign_in_page() -> None:
    assert ConsoleSignIn("admin").role() is Role.ADMIN
    assert ConsoleSignIn("health").role() is Role.HEALTH
    assert ConsoleSignIn("none").role() is None
    assert {c.value for c in ConsoleSignIn} == {r.value for r in Role} | {"none"}
