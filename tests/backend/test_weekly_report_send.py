"""The weekly report through the notification routes: the CLI's --send, and the weekly job.

A real SMTP server (aiosmtpd, STARTTLS and AUTH) and a real webhook receiver on
loopback; the report's counts stay suppressed on the way out.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from backend.jobs import Coordinator, LocalLocks
from backend.jobs.catalog import weekly_report_job
from backend.models import Notification, NotificationRoute
from backend.notify.dispatcher import Dispatcher
from backend.notify.signing import verify
from backend.report.send import WEEKLY_EVENT, due_week, send_due_report
from tests.backend.procs import REPO
from tests.backend.test_notify_channels import _settings, smtp_server
from tests.backend.test_weekly_report import END, SENTENCE, ZONE, _fill
from tests.notify_receiver import webhook_receiver
from tests.waiting import wait_until

SECRET = "a-webhook-secret-of-some-length"
LONG_AGO = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _routes(engine: Engine, hook_url: str) -> None:
    """A mail route for the report alone, a webhook for hotspots and the report, and a
    webhook of every alert type, which must not get the report."""
    with Session(engine) as session:
        for name, channel, target, types in (
                ("mayor-mail", "email", "mayor@city.example, epi@health.example",
                 [WEEKLY_EVENT]),
                ("epi-hook", "webhook", hook_url, ["overdose_hotspot", WEEKLY_EVENT]),
                ("every-alert", "webhook", hook_url, [])):
            session.add(NotificationRoute(name=name, channel=channel, target=target,
                                          alert_types=types, secret=SECRET,
                                          created_at=LONG_AGO))
        session.commit()


def _rows(engine: Engine) -> list[Notification]:
    with Session(engine) as session:
        return list(session.exec(select(Notification).order_by(col(Notification.id))).all())


def _route_ids(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {r.name: r.id for r in session.exec(select(NotificationRoute)).all()
                if r.id is not None}


def _south_cells(page: str) -> list[str]:
    south = re.search(r"<tr><td>South</td>(.*?)</tr>", page)
    assert south is not None
    return re.findall(r"<td>([^<]*)</td>", south.group(1))


def test_report_weekly_send_mails_the_page_and_posts_it_signed_with_small_counts_suppressed(
    engine: Engine, migrated_url: str, tmp_path: Path
) -> None:
    _fill(migrated_url)
    with webhook_receiver() as hook, smtp_server(tmp_path, "starttls") as (inbox, port, ca):
        _routes(engine, hook.url)
        env = {**os.environ, "NX_ENVIRONMENT": "test", "NX_DATABASE_URL": migrated_url,
               "NX_STATS_TIMEZONE": "America/New_York"}
        done = subprocess.run(
            [sys.executable, "-c", "from backend.cli import main; main()", "report", "weekly",
             "--end", END.isoformat(), "--send"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert "queued for 2 routes (mayor-mail, epi-hook)" in done.stdout
        dispatcher = Dispatcher(engine, _settings(migrated_url, port, ca, "starttls"))
        dispatcher.start()
        try:
            wait_until(lambda: len(inbox.messages) == 1 and len(hook.delivered()) == 1,
                       what="the mail and the webhook", timeout=20)
            wait_until(lambda: {n.state for n in _rows(engine)} == {"delivered"},
                       what="both delivered")
        finally:
            dispatcher.stop()
    ids = _route_ids(engine)
    rows = _rows(engine)
    assert sorted(n.route_id for n in rows if n.route_id is not None) == sorted(
        [ids["mayor-mail"], ids["epi-hook"]])  # never the route of every alert type
    assert {n.event for n in rows} == {WEEKLY_EVENT}

    [mail] = inbox.messages
    assert sorted(inbox.recipients[0]) == ["epi@health.example", "mayor@city.example"]
    assert mail["Subject"] == "[NaloxNet] Naloxone situation report, 23 March – 29 March 2026"
    text = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    plain = text.get_content()
    assert "Dispenses, these 7 days: 36" in plain
    assert "Clusters flagged: 1" in plain
    assert SENTENCE in plain
    assert "Machines out of naloxone: 1" in plain
    assert "https://console.test/hotspots" in plain
    page = html.get_content()
    assert SENTENCE in page
    assert _south_cells(page) == ["&lt;5"] * 8 + ["8"]  # South's weekly 1, as the page has it
    [attached] = list(mail.iter_attachments())
    assert attached.get_filename() == "naloxnet-weekly-2026-03-29.html"
    assert attached.get_content().replace("\r\n", "\n") == page.replace("\r\n", "\n")

    [post] = hook.delivered()
    assert post.headers["x-naloxnet-event"] == WEEKLY_EVENT
    assert verify(SECRET, post.headers["x-naloxnet-signature"], post.body, now=time.time())
    body = json.loads(post.body)
    assert body["event"] == WEEKLY_EVENT
    assert body["console_url"] == "https://console.test/hotspots"
    report = body["report"]
    assert (report["start"], report["end"], report["suppression_k"]) == (
        "2026-03-23", "2026-03-29", 5)
    assert report["dispenses"]["these 7 days"] == "36"
    assert [c["explanation"] for c in report["clusters"]] == [SENTENCE]
    assert _south_cells(body["html"]) == ["&lt;5"] * 8 + ["8"]
    # No count under k anywhere in what left: South's 1 a week is only ever "<5".
    assert ">1<" not in body["html"]


def test_send_without_a_report_route_says_so(migrated_url: str) -> None:
    env = {**os.environ, "NX_ENVIRONMENT": "test", "NX_DATABASE_URL": migrated_url}
    done = subprocess.run(
        [sys.executable, "-c", "from backend.cli import main; main()", "report", "weekly",
         "--end", END.isoformat(), "--send"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert "no enabled notification route lists report.weekly" in done.stderr


def test_the_report_of_a_week_falls_due_on_the_monday_after_at_the_hour() -> None:
    zone = ZoneInfo("America/New_York")

    def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
        return dt.datetime(2026, 3, day, hour, minute, tzinfo=zone)

    week = (dt.date(2026, 3, 29), at(30, 7))
    before = (dt.date(2026, 3, 22), at(23, 7))
    assert due_week(at(30, 6, 59), zone, 7) == before  # Monday, not yet 07:00
    assert due_week(at(30, 7), zone, 7) == week
    assert due_week(at(31, 12), zone, 7) == week  # the Tuesday after: still that week
    assert due_week(dt.datetime(2026, 4, 5, 23, 59, tzinfo=zone), zone, 7) == week  # Sunday
    # 08:00 UTC on Monday 9 March is 04:00 in New York (after the change of clocks).
    assert due_week(dt.datetime(2026, 3, 9, 8, tzinfo=dt.UTC), zone, 7)[0] == dt.date(2026, 3, 1)
    assert due_week(dt.datetime(2026, 3, 9, 11, tzinfo=dt.UTC), zone, 7)[0] == dt.date(2026, 3, 8)


def test_the_weekly_job_queues_each_week_once_per_route_whoever_runs_it(
    engine: Engine, migrated_url: str
) -> None:
    _fill(migrated_url)
    _routes(engine, "https://hooks.example/report")
    settings = _settings(migrated_url, 25, Path("ca.pem"), "starttls",
                         stats_timezone="America/New_York")
    due = dt.datetime.combine(END + dt.timedelta(days=1), dt.time(7), ZONE)
    with Session(engine) as session:
        # A route made after the report fell due waits for the next week's.
        session.add(NotificationRoute(name="late", channel="webhook",
                                      target="https://hooks.example/late",
                                      alert_types=[WEEKLY_EVENT],
                                      created_at=due + dt.timedelta(minutes=1)))
        session.commit()
    # Two jobs (two processes) on a clock at Monday 08:00 local, each over several periods.
    def clock() -> dt.datetime:
        return due + dt.timedelta(hours=1)

    job = weekly_report_job(settings)
    coordinators = [Coordinator(engine, LocalLocks(), jobs=[job], clock=clock,
                                holder=f"test:{n}") for n in range(2)]
    threads = [threading.Thread(target=c.run_period, args=(job, due, clock()))
               for c in coordinators for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    ids = _route_ids(engine)
    rows = _rows(engine)
    assert sorted(n.route_id for n in rows if n.route_id is not None) == sorted(
        [ids["mayor-mail"], ids["epi-hook"]])
    assert {n.alert_key for n in rows} == {f"{WEEKLY_EVENT}|{END.isoformat()}"}
    # The week after, the late route gets its first report too.
    with Session(engine) as session:
        queued = send_due_report(session, settings, now=due + dt.timedelta(days=7))
        session.commit()
    assert queued == 3
    assert len(_rows(engine)) == 5
