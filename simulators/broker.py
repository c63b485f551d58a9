"""Run a real Mosquitto from ``broker_config/`` on a free loopback port.

Used by the demo and by the test fixtures. Every broker gets its own
directory (config, password file, persistence), so several can run at once
and none touches the system broker on port 1883.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from string import Template
from types import TracebackType

from backend.provisioning.dynsec import DEFAULT_ADMIN_USER, fleet_config
from backend.provisioning.identity import SERVICE_PREFIX
from backend.provisioning.passwords import new_password, write_password_file

log = logging.getLogger(__name__)

BROKER_CONFIG_DIR = Path(__file__).resolve().parent.parent / "broker_config"
DYNSEC_PLUGIN_GLOBS = ("/usr/lib/*/mosquitto_dynamic_security.so",
                       "/usr/lib/mosquitto_dynamic_security.so",
                       "/usr/local/lib/mosquitto_dynamic_security.so")
DEFAULT_SHARE_GROUP = "nx-ingest"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


class BrokerError(RuntimeError):
    """Mosquitto is missing, or did not start."""


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mosquitto_binary() -> str:
    """Return the path of the mosquitto executable, or raise ``BrokerError``."""
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise BrokerError("mosquitto is not installed (apt-get install mosquitto)")


def dynsec_plugin() -> str:
    """Return the path of Mosquitto's dynamic-security plugin, or raise ``BrokerError``."""
    for pattern in DYNSEC_PLUGIN_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    raise BrokerError("mosquitto_dynamic_security.so not found (it ships with the mosquitto "
                      "package on Debian and Ubuntu)")


def _wait_listening(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerError(f"mosquitto exited at start-up with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)  # ok: polling a port with a deadline
    raise BrokerError(f"mosquitto did not listen on {port} within {START_TIMEOUT_S}s")


class MosquittoBroker:
    """A Mosquitto process with the development config, users and ACL."""

    def __init__(
        self,
        users: Mapping[str, str],
        *,
        port: int | None = None,
        workdir: Path | None = None,
        template: Path = BROKER_CONFIG_DIR / "mosquitto.dev.conf",
        acl_file: Path = BROKER_CONFIG_DIR / "acl.conf",
        extra_config: str = "",
        own_session: bool = False,
        share_group: str = DEFAULT_SHARE_GROUP,
    ) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        # mkdtemp under the system temp dir, opened up so that the mosquitto
        # user the broker drops to can reach it.
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="nx-broker-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o755)  # noqa: S103 - the broker's user must traverse it
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.password_file = self.workdir / "passwords"
        self.acl_file = self.workdir / "acl.conf"
        self.config_file = self.workdir / "mosquitto.conf"
        self.log_file = self.data_dir / "mosquitto.log"
        self.dynsec_file = self.data_dir / "dynamic-security.json"
        # The dynamic-security plugin's admin, for provisioning against this broker
        # (NX_BROKER_DYNSEC_ADMIN_PASSWORD); it may administer and nothing else.
        self.dynsec_admin = (DEFAULT_ADMIN_USER, new_password())
        self._users = dict(users)
        # The demo runs the broker in its own session, so a Ctrl-C in the terminal
        # reaches the demo (which stops the fleet first) rather than the broker.
        self._own_session = own_session
        self._process: subprocess.Popen[bytes] | None = None
        shutil.copyfile(acl_file, self.acl_file)
        os.chmod(self.acl_file, 0o644)
        write_password_file(self.password_file, self._users)
        self._write_dynsec(share_group)
        self._render(template, extra_config)
        self._hand_over_to_broker_user()

    def _write_dynsec(self, share_group: str) -> None:
        # The same users as the password file, as the plugin holds them: services
        # ("nx-...") with the backend's role, machines each with their own role and
        # client id. Templates without the plugin never read this file.
        services = {u: p for u, p in self._users.items() if u.startswith(SERVICE_PREFIX)}
        machines: dict[str, str | None] = {
            u: p for u, p in self._users.items() if not u.startswith(SERVICE_PREFIX)}
        config = fleet_config(self.dynsec_admin, services, machines, share_group)
        self.dynsec_file.write_text(json.dumps(config, indent=1), encoding="utf-8")
        os.chmod(self.dynsec_file, 0o600)

    def _render(self, template: Path, extra_config: str) -> None:
        raw = template.read_text(encoding="utf-8")
        text = Template(raw).substitute(
            port=self.port,
            data_dir=self.data_dir,
            password_file=self.password_file,
            acl_file=self.acl_file,
            dynsec_file=self.dynsec_file,
            plugin=dynsec_plugin() if "${plugin}" in raw else "",
        )
        self.config_file.write_text(text + "\n" + extra_config + "\n", encoding="utf-8")
        os.chmod(self.config_file, 0o644)

    def _hand_over_to_broker_user(self) -> None:
        # Mosquitto started as root drops to the "mosquitto" user; that user
        # must be able to write persistence and the log.
        if os.geteuid() != 0:
            return
        try:
            entry = pwd.getpwnam("mosquitto")
        except KeyError:
            return
        for path in (self.data_dir, *self.data_dir.iterdir()):
            os.chown(path, entry.pw_uid, entry.pw_gid)

    # -- configuration -----------------------------------------------------------------

    def reload(self) -> None:
        """Send SIGHUP: Mosquitto re-reads its password file, ACL and CRL.

        The dynamic-security plugin does not re-read its file; change it through
        its ``$CONTROL`` topic (``backend.provisioning.dynsec.DynsecAdmin``).
        """
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGHUP)

    # -- life cycle --------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> MosquittoBroker:
        """Start the broker and wait until it accepts connections."""
        if self.running:
            return self
        self._process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.config_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=self._own_session,
        )
        try:
            _wait_listening(self.port, self._process, time.monotonic() + START_TIMEOUT_S)
        except BrokerError:
            self.stop()
            raise BrokerError(f"mosquitto failed to start:\n{self.log_tail()}") from None
        log.info("mosquitto listening on %s:%d (pid %d)", self.host, self.port, self._process.pid)
        return self

    def stop(self) -> None:
        """Stop the broker gracefully (it saves its persistence file)."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stderr:
            self._process.stderr.close()
        self._process = None

    def kill(self) -> None:
        """Kill the broker with SIGKILL, as a crash would."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self.stop()

    def log_tail(self, lines: int = 30) -> str:
        """Return the last ``lines`` of the broker's log, for error messages."""
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no broker log)"
        return "\n".join(text.splitlines()[-lines:])

    def cleanup(self) -> None:
        """Stop the broker and remove its directory."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()
