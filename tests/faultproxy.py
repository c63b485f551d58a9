"""A fault-injecting TCP proxy on loopback, for tests of network and database faults.

The kernel here has no ``tc netem`` and there is no toxiproxy, so this small
proxy stands between a client (the agent, an ingest worker, the API) and its
server (Mosquitto, PostgreSQL) and misbehaves on demand. Modes switch at run
time and apply to every connection, open or new:

- ``PASS``: bytes go through as they come.
- ``BLACKHOLE``: a partition. Connections stay open and nothing is forwarded
  either way; what arrives is held, as a real network's retransmissions would
  hold it, and delivered if the partition heals before either end gives up.
  A new connection is accepted (the kernel completes the handshake anyway) but
  not carried to the server until the partition heals. Only keepalives can
  notice, which is what the tests measure (``Closure``).
- ``LATENCY``: every chunk is delivered ``latency_s`` after it arrived
  (a delay line: throughput is kept, each byte is late).
- ``HALF_OPEN``: one direction (``stalled``) is held, the other flows: a
  connection whose acknowledgements never come back.
- ``REFUSE``: the server is down: a new connection is reset as soon as it is
  accepted. Combine with ``reset_all`` for a server that crashed.

``reset_all`` resets every open connection at once (``SO_LINGER`` 0, so both
ends see a TCP RST, not a clean close), whatever the mode.

An end that closes while its data is held (in a partition) drops the whole
connection: the proxy resets the other end when the partition heals, as the
peer's retransmissions would finally be refused. Each close is recorded with
its time (``closures``), so a test can tell which end noticed a fault first
and how long it took.

The proxy runs an asyncio loop in one daemon thread; its methods are called
from the test's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TypeVar

CHUNK = 65536
START_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 10.0
"""How long a call from the test's thread waits for the proxy's loop to do it."""

T = TypeVar("T")


class Mode(enum.Enum):
    """What the proxy does to the traffic (see the module's docstring)."""

    PASS = "pass"
    BLACKHOLE = "blackhole"
    LATENCY = "latency"
    HALF_OPEN = "half-open"
    REFUSE = "refuse"


class Direction(enum.Enum):
    """One direction of a connection."""

    TO_SERVER = "to-server"
    """Client to server (an agent's PUBLISH, an ingest worker's PUBACK)."""
    TO_CLIENT = "to-client"
    """Server to client (the broker's PUBACK, a message to an ingest worker)."""


class End(enum.Enum):
    """Which end of a proxied connection closed it."""

    CLIENT = "client"
    SERVER = "server"
    PROXY = "proxy"
    """The proxy reset it (``reset_all``, ``REFUSE``, or a peer gone during a partition)."""


@dataclass(frozen=True, slots=True)
class Closure:
    """One connection ended: when (``time.monotonic()``), by whom, and how."""

    connection: int
    at: float
    by: End
    reset: bool
    """A TCP RST (or another error) rather than an orderly close."""


@dataclass
class _Pipe:
    """One direction of one connection: what was read and waits to be written."""

    direction: Direction
    held: deque[tuple[float, bytes]] = field(default_factory=deque)
    """(when it may be delivered, bytes), oldest first."""
    eof: bool = False
    """The sending end closed its side after the bytes in ``held``."""


@dataclass
class _Connection:
    ident: int
    client: asyncio.StreamWriter
    client_reader: asyncio.StreamReader
    server: asyncio.StreamWriter | None = None
    server_reader: asyncio.StreamReader | None = None
    pipes: dict[Direction, _Pipe] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    closed: bool = False
    orphaned: bool = False
    """One end left while its direction was held: reset the other when the fault ends."""


def _abort_with_rst(writer: asyncio.StreamWriter) -> None:
    """Close a socket so that the peer gets a TCP RST (SO_LINGER on, timeout 0)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # already gone
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """Forward ``127.0.0.1:<port>`` to ``upstream_host:upstream_port``, with faults on demand."""

    def __init__(self, upstream_host: str, upstream_port: int, *, latency_s: float = 2.0,
                 stalled: Direction = Direction.TO_CLIENT, listen_host: str = "127.0.0.1",
                 listen_sock: socket.socket | None = None,
                 accepted: Callable[[socket.socket], None] | None = None) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.listen_host = listen_host
        self._listen_sock = listen_sock
        """A listening socket to accept on instead (one made in another network namespace)."""
        self._accepted_hook = accepted
        """Called with each accepted socket (to give it the server's TCP timeouts)."""
        self.port = 0
        self._latency_s = latency_s
        self._stalled = stalled
        self._mode = Mode.PASS
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: dict[int, _Connection] = {}
        self._changed: asyncio.Event | None = None
        self._next_id = 0
        self._lock = threading.Lock()
        self.closures: list[Closure] = []
        """Every connection's end, in the order they happened."""
        self.accepted = 0
        self.forwarded = {Direction.TO_SERVER: 0, Direction.TO_CLIENT: 0}
        """Bytes delivered each way."""

    # --- life cycle (the test's thread) ---------------------------------------------------

    def start(self) -> FaultProxy:
        """Listen on a free loopback port; return self."""
        ready: Future[int] = Future()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="fault-proxy",
                                        daemon=True)
        self._thread.start()
        self.port = ready.result(START_TIMEOUT_S)
        return self

    def stop(self) -> None:
        """Reset every connection, stop listening and end the loop's thread."""
        loop = self._loop
        if loop is None or self._thread is None:
            return
        try:
            self._call(self._shutdown)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(CALL_TIMEOUT_S)
            self._thread = None
            self._loop = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- faults (the test's thread) -------------------------------------------------------

    @property
    def mode(self) -> Mode:
        """The mode in force."""
        return self._mode

    def set_mode(self, mode: Mode, *, latency_s: float | None = None,
                 stalled: Direction | None = None) -> None:
        """Switch every connection to ``mode`` (with a new latency or stalled direction)."""
        def change() -> None:
            if latency_s is not None:
                self._latency_s = latency_s
            if stalled is not None:
                self._stalled = stalled
            self._mode = mode
            if mode is Mode.PASS:
                self._drop_half_closed()
            self._wake()

        self._call(change)

    def heal(self) -> None:
        """Back to ``PASS``: what was held is delivered, late."""
        self.set_mode(Mode.PASS)

    def reset_all(self) -> int:
        """Reset every open connection with a TCP RST both ways; return how many there were."""
        def reset() -> int:
            live = [c for c in self._connections.values() if not c.closed]
            for conn in live:
                self._close(conn, by=End.PROXY, reset=True)
            return len(live)

        return self._call(reset)

    def open_connections(self) -> int:
        """How many proxied connections are open now."""
        return self._call(lambda: sum(not c.closed for c in self._connections.values()))

    def open_ids(self) -> set[int]:
        """The ids of the proxied connections open now (``Closure.connection``)."""
        return self._call(lambda: {i for i, c in self._connections.items() if not c.closed})

    def closures_since(self, since: float) -> list[Closure]:
        """Connections that ended at or after ``since`` (a ``time.monotonic()``)."""
        with self._lock:
            return [c for c in self.closures if c.at >= since]

    # --- the loop's thread ----------------------------------------------------------------

    def _call(self, fn: Callable[[], T]) -> T:
        loop = self._loop
        if loop is None:
            raise RuntimeError("the proxy is not running")
        done: Future[T] = Future()

        def run() -> None:
            try:
                done.set_result(fn())
            except BaseException as exc:  # handed to the caller's thread
                done.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return done.result(CALL_TIMEOUT_S)

    def _serve(self, ready: Future[int]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._changed = asyncio.Event()
            self._server = loop.run_until_complete(
                asyncio.start_server(self._accept, sock=self._listen_sock)
                if self._listen_sock is not None
                else asyncio.start_server(self._accept, self.listen_host, 0))
            ready.set_result(int(self._server.sockets[0].getsockname()[1]))
        except BaseException as exc:
            ready.set_exception(exc)
            loop.close()
            return
        try:
            loop.run_forever()
        finally:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections.values()):
            if not conn.closed:
                self._close(conn, by=End.PROXY, reset=True)

    def _wake(self) -> None:
        """Tell every writer that the mode changed."""
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    def _holds(self, direction: Direction) -> bool:
        """Whether bytes going ``direction`` are held now."""
        return self._mode is Mode.BLACKHOLE or (
            self._mode is Mode.HALF_OPEN and direction is self._stalled)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._next_id += 1
        self.accepted += 1
        conn = _Connection(self._next_id, writer, reader)
        conn.pipes = {d: _Pipe(d) for d in Direction}
        self._connections[conn.ident] = conn
        sock = writer.get_extra_info("socket")
        if self._accepted_hook is not None and sock is not None:
            self._accepted_hook(sock)
        if self._mode is Mode.REFUSE:
            self._close(conn, by=End.PROXY, reset=True)
            return
        # Whatever the client says before the server is reached is held in its pipe.
        conn.tasks.append(asyncio.create_task(self._read(conn, Direction.TO_SERVER)))
        while self._mode is Mode.BLACKHOLE and not conn.closed:
            await self._wait_change()  # a partition: no SYN reaches the server
        if conn.closed:
            return
        try:
            conn.server_reader, conn.server = await asyncio.open_connection(*self.upstream)
        except OSError:
            self._close(conn, by=End.SERVER, reset=True)  # the server refused: so do we
            return
        if conn.closed:  # reset while connecting
            _abort_with_rst(conn.server)
            return
        conn.tasks.append(asyncio.create_task(self._read(conn, Direction.TO_CLIENT)))
        for direction in Direction:
            conn.tasks.append(asyncio.create_task(self._write(conn, direction)))

    async def _wait_change(self, timeout: float | None = None) -> None:
        changed = self._changed
        if changed is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)

    def _source(self, conn: _Connection, direction: Direction) -> asyncio.StreamReader | None:
        return conn.client_reader if direction is Direction.TO_SERVER else conn.server_reader

    def _sink(self, conn: _Connection, direction: Direction) -> asyncio.StreamWriter | None:
        return conn.server if direction is Direction.TO_SERVER else conn.client

    async def _read(self, conn: _Connection, direction: Direction) -> None:
        """Read one direction into its pipe, always: a held direction still notices a close."""
        source = self._source(conn, direction)
        pipe = conn.pipes[direction]
        sender = End.CLIENT if direction is Direction.TO_SERVER else End.SERVER
        if source is None:
            return
        failed = False
        try:
            while not conn.closed:
                data = await source.read(CHUNK)
                if not data:
                    break
                delay = self._latency_s if self._mode is Mode.LATENCY else 0.0
                pipe.held.append((time.monotonic() + delay, data))
                self._wake()
        except (ConnectionError, OSError):
            failed = True
        if conn.closed:
            return
        if self._holds(direction):
            # The end is gone while its bytes are held: note when it noticed; the
            # other end learns only when the partition heals (_drop_half_closed).
            pipe.eof = conn.orphaned = True
            self._note(conn, sender, reset=failed)
        elif failed:
            self._close(conn, by=sender, reset=True)
        else:
            pipe.eof = True  # the writer closes the other end once the rest is delivered
        self._wake()

    async def _write(self, conn: _Connection, direction: Direction) -> None:
        pipe = conn.pipes[direction]
        sink = self._sink(conn, direction)
        sender = End.CLIENT if direction is Direction.TO_SERVER else End.SERVER
        if sink is None:
            return
        try:
            while not conn.closed:
                if self._holds(direction) or not (pipe.held or pipe.eof):
                    await self._wait_change()
                    continue
                if pipe.held:
                    due, data = pipe.held[0]
                    wait = due - time.monotonic()
                    if wait > 0:
                        await self._wait_change(wait)
                        continue
                    pipe.held.popleft()
                    sink.write(data)
                    await sink.drain()
                    self.forwarded[direction] += len(data)
                    continue
                # Everything delivered and the sender closed: close the other end too.
                self._close(conn, by=sender, reset=False)
        except (ConnectionError, OSError):
            if not conn.closed:
                receiver = End.SERVER if direction is Direction.TO_SERVER else End.CLIENT
                self._close(conn, by=receiver, reset=True)

    def _drop_half_closed(self) -> None:
        """At the end of a partition, reset connections one end of which left during it."""
        for conn in list(self._connections.values()):
            if not conn.closed and conn.orphaned:
                self._close(conn, by=End.PROXY, reset=True, record=False)

    def _note(self, conn: _Connection, by: End, *, reset: bool) -> None:
        with self._lock:
            self.closures.append(Closure(conn.ident, time.monotonic(), by, reset))

    def _close(self, conn: _Connection, *, by: End, reset: bool, record: bool = True) -> None:
        if conn.closed:
            return
        conn.closed = True
        if record:
            self._note(conn, by, reset=reset)
        for writer in (conn.client, conn.server):
            if writer is None:
                continue
            if reset:
                _abort_with_rst(writer)
            else:
                writer.close()
        current = asyncio.current_task()
        for task in conn.tasks:
            if task is not current:
                task.cancel()
        del self._connections[conn.ident]
        self._wake()

