"""A real network partition: a network namespace joined to this one by a veth pair.

The fault proxy (tests/faultproxy.py) holds bytes in user space, but its kernel
still acknowledges every segment and keepalive probe, so a client's TCP timers
never fire through it: only an application's own keepalive (MQTT's) can notice.
PostgreSQL's protocol has none; its clients rely on the kernel (TCP keepalives,
``tcp_user_timeout``), which only a partition the kernel sees can test.

``VethPartition`` makes a namespace with one end of a veth pair; a socket can be
made to listen inside it (``listen``), reached from this namespace over the pair.
``cut`` sets the far end down: from then on every packet either way is dropped
without a word (no RST, no ICMP), as when a switch dies. ``heal`` brings it back.
The neighbour (ARP) entries are permanent, so nothing answers "no route" after a
cut. Needs root and ``ip``; ``unavailable`` says why not.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import threading
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/var/run/netns")


def unavailable() -> str | None:
    """Why a partition cannot be made here, or None."""
    if shutil.which("ip") is None:
        return "no `ip` command"
    if os.geteuid() != 0:
        return "network namespaces need root"
    return None


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True,
                          timeout=10).stdout


class VethPartition:
    """A namespace behind a veth pair whose far end can be cut (see the module's docstring)."""

    def __init__(self) -> None:
        pid = os.getpid()
        self.namespace = f"nxpart{pid}"
        self._near, self._far = f"nxn{pid}", f"nxf{pid}"
        # A /30 of its own per test process: 10.213-250.x.y from the pid.
        block = (pid % 16384) * 4
        prefix = f"10.{213 + pid // 16384 % 38}.{block // 256}"
        self.near_address = f"{prefix}.{block % 256 + 1}"
        self.address = f"{prefix}.{block % 256 + 2}"
        """The far end's address: where a socket made by ``listen`` is reached."""

    def start(self) -> VethPartition:
        """Make the namespace and the pair, with addresses and permanent neighbours."""
        ns = self.namespace
        _ip("netns", "add", ns)
        try:
            _ip("link", "add", self._near, "type", "veth", "peer", "name", self._far,
                "netns", ns)
            _ip("addr", "add", f"{self.near_address}/30", "dev", self._near)
            _ip("link", "set", self._near, "up")
            _ip("-n", ns, "addr", "add", f"{self.address}/30", "dev", self._far)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", self._far, "up")
            self._neighbours()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Delete the namespace (the pair goes with it)."""
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True, timeout=10,
                       check=False)

    def __enter__(self) -> VethPartition:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def listen(self) -> socket.socket:
        """A TCP socket listening on a free port at ``address``, inside the namespace."""
        made: list[socket.socket] = []
        failed: list[BaseException] = []

        def make() -> None:
            # setns moves only the calling thread; a socket keeps the namespace it was
            # made in for ever, so a short-lived thread makes it and ends.
            libc = ctypes.CDLL(None, use_errno=True)
            target = os.open(NETNS_DIR / self.namespace, os.O_RDONLY)
            try:
                if libc.setns(target, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self.address, 0))
                sock.listen(128)
                made.append(sock)
            except BaseException as exc:  # handed to the caller's thread
                failed.append(exc)
            finally:
                os.close(target)

        thread = threading.Thread(target=make, name="netns-listen")
        thread.start()
        thread.join()
        if failed:
            raise failed[0]
        return made[0]

    def cut(self) -> None:
        """Partition: every packet between the namespaces is dropped from now on."""
        _ip("-n", self.namespace, "link", "set", self._far, "down")

    def heal(self) -> None:
        """End the partition."""
        _ip("-n", self.namespace, "link", "set", self._far, "up")
        self._neighbours()  # the far end's table was flushed when it went down

    def _neighbours(self) -> None:
        near_mac = Path(f"/sys/class/net/{self._near}/address").read_text().strip()
        far_mac = _ip("-n", self.namespace, "-o", "link", "show", self._far).split(
            "link/ether ")[1].split()[0]
        _ip("neigh", "replace", self.address, "lladdr", far_mac, "dev", self._near,
            "nud", "permanent")
        _ip("-n", self.namespace, "neigh", "replace", self.near_address, "lladdr", near_mac,
            "dev", self._far, "nud", "permanent")

    def established(self) -> dict[int, int]:
        """This namespace's established connections to ``address``: local port -> owner pid."""
        out = subprocess.run(
            ["ss", "-tnHp", "state", "established", "dst", self.address],
            check=True, capture_output=True, text=True, timeout=10).stdout
        found: dict[int, int] = {}
        for line in out.splitlines():
            local = line.split()[2]  # Recv-Q Send-Q Local Peer Process
            owner = line.partition("pid=")[2].partition(",")[0]
            found[int(local.rsplit(":", 1)[1])] = int(owner) if owner.isdigit() else 0
        return found
