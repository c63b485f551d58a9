"""``nx-agent dex parse`` and ``nx-agent dex read`` through a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from simulators.virtual_dex import VirtualDexMachine
from tests.dex.helpers import DATA

CLI_TIMEOUT_S = 60


def nx_agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "firmware_agent.cli", *args],
        capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False,
    )


def test_parse_prints_selections_as_json() -> None:
    result = nx_agent("dex", "parse", str(DATA / "rhevendors.eva_dts"))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["identity"]["serial"] == "RHV0000000000"
    latte = next(s for s in document["selections"] if s["id"] == "5")
    assert latte["name"] == "LATTE MACCHIATO BOHNE"
    assert latte["price"] == 80
    assert latte["vends"] == 1859
    assert latte["free_vends"] == 0
    assert document["paid"]["count"] == 9612
    assert document["crc_ok"] is True
    assert any(e["code"] == "EC" and e["occurred_at"] == "2023-08-31T11:40:00"
               for e in document["events"])


def test_malformed_file_exits_2_with_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.eva_dts"
    bad.write_bytes(b"DXS*X*VA*V1/1*1\r\nST*001*0001\r\nPA1*1*100*A\r\nPA2*ten*0*0*0\r\n")
    result = nx_agent("dex", "parse", str(bad))
    assert result.returncode == 2
    assert "line 4" in result.stderr
    assert "PA2 field 01 is not a count" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_noisy_byte_in_an_ea2_count_is_read_not_a_traceback(tmp_path: Path) -> None:
    noisy = tmp_path / "noisy.eva_dts"
    noisy.write_bytes(b"DXS*X*VA*V1/1*1\r\nST*001*0001\r\nEA2*EJJ*\xb2\r\n")
    result = nx_agent("dex", "parse", str(noisy))
    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stderr
    (event,) = json.loads(result.stdout)["events"]
    assert event["code"] == "EJJ"
    assert event["count_since_reset"] is None


def test_a_noisy_byte_in_a_price_exits_2_naming_the_line(tmp_path: Path) -> None:
    noisy = tmp_path / "noisy.eva_dts"
    noisy.write_bytes(b"DXS*X*VA*V1/1*1\r\nST*001*0001\r\nPA1*1*\xb2\r\n")
    result = nx_agent("dex", "parse", str(noisy))
    assert "Traceback" not in result.stderr
    assert result.returncode == 2
    assert "line 3: PA1 field 02 is not a count" in result.stderr


def test_missing_file_exits_2(tmp_path: Path) -> None:
    result = nx_agent("dex", "parse", str(tmp_path / "absent.eva_dts"))
    assert result.returncode == 2
    assert "cannot read" in result.stderr
    assert "Traceback" not in result.stderr


def test_read_from_a_live_dex_port(machine: VirtualDexMachine) -> None:
    machine.vend("2", count=7)
    result = nx_agent("dex", "read", machine.port)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["identity"]["serial"] == machine.serial
    by_id = {s["id"]: s for s in document["selections"]}
    assert by_id["2"]["free_vends"] == 7
    assert by_id["2"]["name"] == "NALOXONE IM 0.4MG"
