"""``nx-backend migrate | serve | ingest``: run the backend's services."""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import threading
from datetime import timedelta
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Protocol, TypeVar

import typer
from prometheus_client import CollectorRegistry

from backend.config import get_settings
from backend.db import SchemaOutOfDateError, make_engine, migrate

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from backend.jobs import Coordinator

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=LOG_FORMAT)


def migrate_command(
    database_url: Annotated[
        str | None, typer.Option(help="Database URL (default: NX_DATABASE_URL)")
    ] = None,
) -> None:
    """Upgrade the database to the newest schema."""
    _setup_logging(False)
    url = database_url or get_settings().database_url
    migrate(url)
    typer.echo("database schema is up to date")


def _service_jobs(
    engine: Engine, *, hotspots: bool, notify: bool, forecast: bool
) -> Coordinator | None:
    """Start competing for the hotspot scan, forecast and notification jobs, as asked."""
    from backend.jobs import Coordinator, make_locks
    from backend.jobs.catalog import forecast_job, hotspot_job, notify_job, weekly_report_job

    settings = get_settings()
    jobs = ([hotspot_job(engine)] if hotspots else []) + (
        [forecast_job(engine)] if forecast else []) + (
        [notify_job(engine, settings), weekly_report_job(settings)] if notify else [])
    if not jobs:
        return None
    locks = make_locks(settings.database_url, dead_link_s=settings.database_dead_link_s)
    coordinator = Coordinator(engine, locks, jobs=jobs, poll_s=settings.jobs_poll_s)
    coordinator.start()
    return coordinator


def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    ingest: Annotated[bool, typer.Option(help="Run ingest worker 0 in this process")] = True,
    hotspots: Annotated[
        bool, typer.Option(help="Run the scheduled hotspot scan (NX_HOTSPOT_*) in this process")
    ] = True,
    notify: Annotated[
        bool, typer.Option(help="Run the notification dispatcher (NX_NOTIFY_*) in this process")
    ] = True,
    commands: Annotated[
        bool, typer.Option(help="Send and resend machine commands (NX_COMMANDS_*) in this process")
    ] = True,
    forecast: Annotated[
        bool, typer.Option(help="Run the stock-out forecast job (NX_FORECAST_*) in this process")
    ] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Serve the HTTP API (and, by default, an ingest worker, hotspot scan and dispatcher)."""
    import uvicorn

    from backend.app import create_app
    from backend.ingest import IngestWorker
    from backend.public import access_log as public_access_log
    from backend.public.builder import ProcessBuilder

    _setup_logging(verbose)
    settings = get_settings()
    registry = CollectorRegistry()
    # Each service is stopped in the reverse order of its start, however serving ends:
    # jobs first, so a run is finished and logged before what it may use goes away.
    with contextlib.ExitStack() as services:
        try:
            feed_builder = ProcessBuilder(settings.database_url,
                                          timedelta(seconds=settings.offline_timeout_s),
                                          settings.database_dead_link_s)
            services.callback(feed_builder.close)
            app = create_app(settings, registry=registry, public_feed_builder=feed_builder)
            if ingest:
                worker = IngestWorker(settings, 0, registry=registry)
                _start(services, worker)
                # Serve only once ingest is subscribed, so a healthy API means events are
                # being taken; a broker that is down must not keep the API down, though.
                if not worker.wait_subscribed(settings.ingest_startup_wait_s):
                    log.warning(
                        "ingest not subscribed after %.0f s; serving anyway",
                        settings.ingest_startup_wait_s,
                    )
        except SchemaOutOfDateError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
        if notify:
            from backend.notify.dispatcher import Dispatcher

            _start(services, Dispatcher(make_engine(settings.database_url, immediate=True,
                         dead_link_s=settings.database_dead_link_s),
                                        settings))
        if commands:
            from backend.commands.publisher import MqttCommandPublisher
            from backend.commands.resender import CommandResender

            publisher = _start(services, MqttCommandPublisher(settings))
            resender = CommandResender(make_engine(settings.database_url, immediate=True,
                         dead_link_s=settings.database_dead_link_s),
                                       publisher, settings)
            app.state.command_resender = resender
            _start(services, resender)
        # The job writes alerts while ingest writes too: on SQLite a writer that
        # reads first needs BEGIN IMMEDIATE, which the API's read engine does not use.
        coordinator = _service_jobs(make_engine(settings.database_url, immediate=True,
                         dead_link_s=settings.database_dead_link_s),
                                    hotspots=hotspots, notify=notify, forecast=forecast)
        if coordinator is not None:
            services.callback(coordinator.stop)
        public_access_log.install()
        # Everything loaded so far lives as long as the process: keep it out of the
        # cyclic collector's full passes, which otherwise walked all of FastAPI,
        # SQLAlchemy and pydantic every two seconds under load and stalled every
        # request for up to 100 ms (the public feed benchmark's tail).
        gc.collect()
        gc.freeze()
        uvicorn.run(app, host=host, port=port, log_level="info")


class _Service(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


_S = TypeVar("_S", bound=_Service)


def _start(services: contextlib.ExitStack, service: _S) -> _S:
    """Start ``service`` and have ``services`` stop it when serving ends."""
    service.start()
    services.callback(service.stop)
    return service


def ingest_command(
    worker: Annotated[int, typer.Option("--worker", help="Worker index (stable client id)")] = 0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run one ingest worker until SIGTERM or SIGINT."""
    from backend.ingest import IngestWorker

    _setup_logging(verbose)
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    settings = get_settings()
    instance = IngestWorker(settings, worker)
    try:
        instance.start()
    except SchemaOutOfDateError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    if settings.ingest_metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(
            settings.ingest_metrics_port, settings.ingest_metrics_host, registry=instance.registry
        )
    log.info("ingest worker %d running", worker)
    try:
        stop.wait()
    finally:
        instance.stop()


def notify_command(
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the notification dispatcher alone until SIGTERM or SIGINT (any number may run)."""
    from backend.db import check_schema
    from backend.notify.dispatcher import Dispatcher

    _setup_logging(verbose)
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    settings = get_settings()
    engine = make_engine(settings.database_url, immediate=True,
                         dead_link_s=settings.database_dead_link_s)
    try:
        check_schema(engine)
    except SchemaOutOfDateError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    dispatcher = Dispatcher(engine, settings)
    dispatcher.start()
    coordinator = _service_jobs(engine, hotspots=False, notify=True, forecast=False)
    log.info("notification dispatcher running")
    try:
        stop.wait()
    finally:
        if coordinator is not None:
            coordinator.stop()
        dispatcher.stop()
        engine.dispose()


def register(app: typer.Typer) -> None:
    """Add the service commands to the ``nx-backend`` app."""
    app.command("migrate")(migrate_command)
    app.command("serve")(serve_command)
    app.command("ingest")(ingest_command)
    app.command("notify")(notify_command)
