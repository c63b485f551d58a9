"""One agent per data dir and per serial port: a second one is refused, clearly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_agent.agent import Agent
from firmware_agent.config import AgentSettings
from firmware_agent.drivers.base import DriverError, Vend
from firmware_agent.drivers.dex import DexDriver
from firmware_agent.drivers.nxlink import NxlinkDriver
from firmware_agent.instance_lock import DataDirLock, InstanceLockError
from simulators.virtual_controller import VirtualController
from tests.agent.helpers import run_agent_cli
from tests.waiting import wait_until


def test_a_second_lock_on_a_data_dir_is_refused_naming_the_holder(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire()
    second = DataDirLock(tmp_path)
    with pytest.raises(InstanceLockError, match=rf"another nx-agent \(pid {os.getpid()}\)"):
        second.acquire()
    assert not second.held
    first.release()
    second.acquire()
    assert second.held
    second.release()
    second.release()  # releasing twice is harmless


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    code = ("import sys\n"
            "from pathlib import Path\n"
            "from firmware_agent.instance_lock import DataDirLock\n"
            f"DataDirLock(Path({str(tmp_path)!r})).acquire()\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(InstanceLockError, match=f"pid {holder.pid}"):
            DataDirLock(tmp_path).acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
    finally:
        if holder.poll() is None:
            holder.kill()
    lock = DataDirLock(tmp_path)
    lock.acquire()  # the kernel dropped the dead holder's lock
    lock.release()


def test_two_agents_on_one_data_dir(tmp_path: Path) -> None:
    settings = AgentSettings(machine_id="test-001", serial_port="loop://", data_dir=tmp_path)
    first = Agent(settings)
    with pytest.raises(InstanceLockError, match="another nx-agent"):
        Agent(settings)
    boot_id = first.boot_id
    first.stop()
    second = Agent(settings)  # the refused start did not take a boot id either
    assert second.boot_id == boot_id + 1
    second.stop()


def test_cli_refuses_a_data_dir_in_use(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "agent.toml"
    config.write_text(f'machine_id = "test-001"\nserial_port = "loop://"\n'
                      f'data_dir = "{data}"\n', encoding="utf-8")
    lock = DataDirLock(data)
    lock.acquire()
    try:
        out = run_agent_cli("run", "--config", str(config))
    finally:
        lock.release()
    assert out.returncode == 2
    assert f"another nx-agent (pid {os.getpid()}) is using {data}" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (data / "agent.db").exists()  # refused before the store was touched


def test_nxlink_driver_opens_its_port_exclusively() -> None:
    with VirtualController({1: ("naloxone-nasal-4mg", 5, 5)}) as vc:
        first = NxlinkDriver(vc.port)
        first.open()
        try:
            second = NxlinkDriver(vc.port)
            with pytest.raises(DriverError, match=f"cannot open {vc.port}.*lock"):
                second.open()
            vc.vend(1)
            # The first driver still has the line to itself.
            vends: list[object] = []

            def read_one() -> bool:
                batch = first.read(0.1)
                first.commit(batch)
                vends.extend(batch.observations)
                return vc.unacked == 0

            wait_until(read_one, what="the vend read by the first driver")
            assert [o.slot for o in vends if isinstance(o, Vend)] == [1]
        finally:
            first.close()
        second.open()  # free again once the first closed it
        second.close()


def test_dex_driver_opens_its_port_exclusively(tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        port = os.ttyname(slave)
        first = DexDriver(port, data_dir=tmp_path / "a")
        first.open()
        try:
            with pytest.raises(DriverError, match=f"cannot open DEX port {port}.*lock"):
                DexDriver(port, data_dir=tmp_path / "b").open()
        finally:
            first.close()
    finally:
        os.close(master)
        os.close(slave)

