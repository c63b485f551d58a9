"""The fault proxy itself, against a plain echo server on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.faultproxy import Direction, End, FaultProxy, Mode
from tests.waiting import wait_until

QUIET_S = 0.3
"""How long a held direction is watched for a byte that must not come."""
LATENCY_S = 0.3


class EchoServer:
    """Echo every byte back; count connections and what arrived."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.accepted = 0
        self.received = bytearray()
        self.resets = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(4096)
                except ConnectionResetError:
                    with self._lock:
                        self.resets += 1
                    return
                if not data:
                    return
                with self._lock:
                    self.received += data
                conn.sendall(data)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", echo.port, latency_s=LATENCY_S) as p:
        yield p


def _connect(proxy: FaultProxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    return sock


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return bytes(data)


def _exchange(proxy: FaultProxy, data: bytes) -> bytes:
    with _connect(proxy) as sock:
        sock.sendall(data)
        return _recv_exactly(sock, len(data))


def _nothing_arrives(sock: socket.socket) -> bool:
    sock.settimeout(QUIET_S)
    try:
        sock.recv(1)  # a byte, or b"" for a close: either way something came
    except TimeoutError:
        return True
    finally:
        sock.settimeout(5)
    return False


def test_pass_forwards_both_ways(proxy: FaultProxy) -> None:
    with _connect(proxy) as sock:
        sock.sendall(b"hello")
        assert _recv_exactly(sock, 5) == b"hello"
    # Counted after the write returned, which may be just after the client read it.
    wait_until(lambda: proxy.forwarded == {Direction.TO_SERVER: 5, Direction.TO_CLIENT: 5},
               what="bytes counted")


def test_blackhole_holds_everything_and_delivers_it_when_healed(
    proxy: FaultProxy, echo: EchoServer
) -> None:
    with _connect(proxy) as sock:
        sock.sendall(b"a")
        assert _recv_exactly(sock, 1) == b"a"
        proxy.set_mode(Mode.BLACKHOLE)
        sock.sendall(b"bc")
        assert _nothing_arrives(sock)
        assert bytes(echo.received) == b"a"  # the server did not get it either
        with _connect(proxy) as late:
            # A new connection is accepted but never reaches the server.
            late.sendall(b"z")
            assert _nothing_arrives(late)
            assert echo.accepted == 1
            proxy.heal()
            assert _recv_exactly(late, 1) == b"z"
        assert _recv_exactly(sock, 2) == b"bc"
    assert echo.accepted == 2


def test_an_end_that_leaves_during_a_partition_is_recorded_and_the_other_reset(
    proxy: FaultProxy, echo: EchoServer
) -> None:
    sock = _connect(proxy)
    sock.sendall(b"x")
    assert _recv_exactly(sock, 1) == b"x"
    proxy.set_mode(Mode.BLACKHOLE)
    started = time.monotonic()
    sock.close()
    wait_until(lambda: bool(proxy.closures_since(started)), what="the client's close noted")
    closure = proxy.closures_since(started)[0]
    assert closure.by is End.CLIENT
    assert not closure.reset
    assert proxy.open_connections() == 1  # the server does not know yet
    proxy.heal()
    wait_until(lambda: proxy.open_connections() == 0, what="connection dropped at the heal")
    wait_until(lambda: echo.resets == 1, what="the server reset")


def test_reset_all_sends_rst_to_both_ends(proxy: FaultProxy, echo: EchoServer) -> None:
    with _connect(proxy) as sock:
        sock.sendall(b"x")
        assert _recv_exactly(sock, 1) == b"x"
        assert proxy.reset_all() == 1
        with pytest.raises(ConnectionResetError):
            sock.recv(1)
    wait_until(lambda: echo.resets == 1, what="the server reset")
    [closure] = proxy.closures
    assert (closure.by, closure.reset) == (End.PROXY, True)


def test_latency_delays_each_chunk_and_keeps_order(proxy: FaultProxy) -> None:
    proxy.set_mode(Mode.LATENCY)
    with _connect(proxy) as sock:
        started = time.monotonic()
        for n in range(5):
            sock.sendall(bytes([65 + n]))
        assert _recv_exactly(sock, 5) == b"ABCDE"
        took = time.monotonic() - started
    # Once on the way there, once on the way back; the five chunks overlap.
    assert took >= 2 * LATENCY_S
    assert took < 5 * 2 * LATENCY_S


def test_half_open_stalls_one_direction_only(proxy: FaultProxy, echo: EchoServer) -> None:
    with _connect(proxy) as sock:
        proxy.set_mode(Mode.HALF_OPEN, stalled=Direction.TO_CLIENT)
        sock.sendall(b"ping")
        wait_until(lambda: bytes(echo.received) == b"ping", what="the server got it")
        assert _nothing_arrives(sock)
        proxy.heal()
        assert _recv_exactly(sock, 4) == b"ping"
        proxy.set_mode(Mode.HALF_OPEN, stalled=Direction.TO_SERVER)
        sock.sendall(b"pong")
        assert _nothing_arrives(sock)
        assert bytes(echo.received) == b"ping"
        proxy.heal()
        assert _recv_exactly(sock, 4) == b"pong"


def test_refuse_resets_new_connections_until_healed(proxy: FaultProxy, echo: EchoServer) -> None:
    proxy.set_mode(Mode.REFUSE)
    with pytest.raises(ConnectionError):  # at connect, send or receive: a race with the RST
        _exchange(proxy, b"x")
    assert echo.accepted == 0
    proxy.heal()
    with _connect(proxy) as sock:
        sock.sendall(b"y")
        assert _recv_exactly(sock, 1) == b"y"


def test_a_server_that_refuses_is_passed_on_as_a_reset() -> None:
    with socket.create_server(("127.0.0.1", 0)) as spare:
        port = int(spare.getsockname()[1])
    with FaultProxy("127.0.0.1", port) as proxy, pytest.raises(ConnectionError):
        _exchange(proxy, b"x")
    assert proxy.closures[0].by is End.SERVER
