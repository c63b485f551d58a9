"""Migrations, the schema check, and the database-enforced alert rule."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from backend.db import (
    SchemaOutOfDateError,
    alembic_config,
    check_schema,
    current_revision,
    head_revision,
    make_engine,
    migrate,
)
from backend.models import Alert, Product
from tests.backend.helpers import fresh

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_migrate_from_empty_to_head_and_back(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with pytest.raises(SchemaOutOfDateError, match="nx-backend migrate"):
            check_schema(engine)
        migrate(db_url)
        check_schema(engine)
        assert current_revision(engine) == head_revision()
        with Session(engine) as session:
            naloxone = session.execute(
                select(func.count()).select_from(Product).where(Product.is_naloxone)
            ).scalar_one()
            assert naloxone >= 3
        with engine.begin() as connection:
            config = alembic_config(db_url)
            config.attributes["connection"] = connection
            command.downgrade(config, "0001")
        with pytest.raises(SchemaOutOfDateError, match="0001"):
            check_schema(engine)
        migrate(db_url)
        check_schema(engine)
    finally:
        engine.dispose()


def _alert(status: str = "open") -> Alert:
    return Alert(type="low_stock", severity="warning", subject="m-1/slot/1", machine_id="m-1",
                 message="low", status=status, opened_at=NOW)


def test_one_unresolved_alert_per_type_and_subject(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    try:
        with Session(engine) as session:
            session.add(_alert("acknowledged"))
            session.commit()
            session.add(_alert())
            with pytest.raises(IntegrityError):
                session.commit()
            fresh(session)
            first = session.execute(select(Alert)).scalars().one()
            first.status = "resolved"
            session.commit()
            session.add(_alert())  # a new episode after the old one was resolved
            session.commit()
            count = session.execute(select(func.count()).select_from(Alert)).scalar_one()
            assert count == 2
    finally:
        engine.dispose()


def test_cli_migrate_works_from_any_directory(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    done = subprocess.run(
        [sys.executable, "-c", "from backend.cli import main; main()", "migrate",
         "--database-url", url],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    engine = make_engine(url)
    try:
        check_schema(engine)
    finally:
        engine.dispose()


def test_models_and_migrations_agree(migrated_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    engine = make_engine(migrated_url)
    try:
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []
    finally:
        engine.dispose()


def test_migration_0006_keeps_each_messages_first_dead_letter(db_url: str) -> None:
    from sqlalchemy import text

    from backend.ingest.dead_letters import dead_letter_digest
    from backend.models import DeadLetter

    migrate(db_url, "0005")
    engine = make_engine(db_url)
    rows = [("nx/v1/machines/m-1/events", b"{not json", "2026-11-24 12:00:00"),
            ("nx/v1/machines/m-1/events", b"{not json", "2026-11-24 12:00:05"),  # redelivered
            ("nx/v1/machines/m-2/events", b"{not json", "2026-11-24 12:00:01"),  # other topic
            ("nx/v1/machines/m-1/events", b"\xff\xfe", "2026-11-24 12:00:02")]
    try:
        with engine.begin() as connection:
            for topic, payload, received in rows:
                connection.execute(
                    text("INSERT INTO dead_letter (received_at, topic, reason, payload) "
                         "VALUES (:received, :topic, 'not json', :payload)"),
                    {"received": received, "topic": topic, "payload": payload})
        migrate(db_url)
        with Session(engine) as session:
            letters = session.execute(select(DeadLetter).order_by(DeadLetter.id)).scalars().all()
            assert [(d.topic, d.payload, d.received_at.second) for d in letters] == [
                (t, p, int(r[-2:])) for t, p, r in (rows[0], rows[2], rows[3])]
            assert all(d.digest == dead_letter_digest(d.topic, d.payload) for d in letters)
            session.add(DeadLetter(topic=rows[0][0], reason="again", payload=rows[0][1],
                                   digest=dead_letter_digest(rows[0][0], rows[0][1])))
            with pytest.raises(IntegrityError):
                session.commit()
    finally:
        engine.dispose()


def test_migration_0010_gives_old_dead_letters_their_machine(db_url: str) -> None:
    from sqlalchemy import text

    from backend.models import DeadLetter

    migrate(db_url, "0009")
    engine = make_engine(db_url)
    rows = [("nx/v1/machines/m-1/events", "not json", "a"),
            ("nx/v1/machines/m-2/cmd/result", "unknown machine 'm-2'", "b"),
            ("elsewhere/x", "topic: outside", "c")]
    try:
        with engine.begin() as connection:
            for topic, reason, digest in rows:
                connection.execute(
                    text("INSERT INTO dead_letter (received_at, topic, reason, payload, digest) "
                         "VALUES ('2026-11-24 12:00:00', :topic, :reason, :payload, :digest)"),
                    {"topic": topic, "reason": reason, "payload": b"{", "digest": digest})
        migrate(db_url)
        with Session(engine) as session:
            letters = session.execute(select(DeadLetter).order_by(DeadLetter.id)).scalars().all()
            assert [(d.machine_id, d.malformed) for d in letters] == [
                ("m-1", True), ("m-2", False), ("?", True)]
    finally:
        engine.dispose()
