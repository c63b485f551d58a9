"""The EVA-DTS parser on every real audit file, and on malformed ones."""

from __future__ import annotations

from datetime import datetime

import pytest

from firmware_agent.dex.parser import DexParseError, parse_audit, parse_date_time
from tests.dex.helpers import DATA, read_sample

REAL_FILES = sorted(p.name for p in DATA.iterdir() if not p.name.endswith((".txt", ".md")))
REAL_FILES += ["nec-kalea.evadts.txt"]


def test_every_real_file_is_covered() -> None:
    assert set(REAL_FILES) == {
        "animo.eva_dts", "animo2.eva_dts", "nec-kalea.evadts.txt",
        "rhevendors.eva_dts", "sielaff.eva_dts",
    }


@pytest.mark.parametrize("name", REAL_FILES)
def test_real_file_parses_with_identity(name: str) -> None:
    audit = parse_audit(read_sample(name))
    assert audit.identity.serial
    assert audit.identity.communication_id
    assert audit.paid is not None
    assert audit.paid.count is not None


def test_animo_coffee_machine() -> None:
    audit = parse_audit(read_sample("animo.eva_dts"))
    assert audit.identity.serial == "ANIKraftver"
    assert audit.identity.model == "3M3Aba"
    assert audit.identity.currency == "EUR"
    assert audit.identity.machine_time == datetime(2010, 1, 19, 23, 1, 11)
    assert len(audit.selections) == 24
    coffee = audit.selection("0")
    assert (coffee.name, coffee.price, coffee.vends, coffee.free_vends) == ("COFFEE", 100, 412, 359)
    assert coffee.vend_value == 41200
    assert coffee.test_vends_since_reset == 4
    assert audit.selection("5").name == "LATTE MACCHIATO"
    assert audit.selection("5").vends == 324
    assert audit.selection("1").name is None  # PA1*1*100****0: no name given
    # Animo's VA1 count equals the sum of PA2 field 03, not field 01 (a quirk, docs/dex.md).
    assert audit.paid is not None
    assert audit.paid.count == 8161
    assert sum(s.vends_since_reset or 0 for s in audit.selections) == 8161
    assert audit.complete
    assert audit.crc_ok is True
    assert audit.temperature_c is None
    assert {"AM1", "EA6", "SA2"} <= set(audit.ignored_records)
    assert audit.warnings == ()


def test_animo2_is_truncated_but_readable() -> None:
    audit = parse_audit(read_sample("animo2.eva_dts"))
    assert audit.identity.serial == "ANIIMM 2WG3"
    assert not audit.complete
    assert audit.crc_ok is None
    assert any("truncated" in w for w in audit.warnings)
    assert len(audit.selections) == 27
    assert audit.selection("2").name == "2X COFFEE"
    assert audit.selection("2").free_vends == 4
    assert audit.selection("12").test_vends == 1
    assert audit.selection("21").name == "ESPRESSO#MACCHIATO"
    last = audit.selection("27")
    assert (last.name, last.vends, last.test_vends) == ("RISTRETTO SUGAR", 0, None)
    assert audit.free is not None
    assert audit.free.count == 11
    assert sum(s.free_vends or 0 for s in audit.selections) == 11


def test_nec_kalea() -> None:
    audit = parse_audit(read_sample("nec-kalea.evadts.txt"))
    assert audit.identity.serial == "NEC00320815"
    assert audit.identity.model == "Kalea"
    assert audit.identity.machine_time == datetime(2021, 1, 20, 8, 52, 34)
    assert [s.id for s in audit.selections] == [str(n) for n in range(108, 130)]
    espresso = audit.selection("110")
    assert (espresso.name, espresso.price, espresso.vends, espresso.vend_value) == (
        "Espresso", 200, 3, 500)
    assert espresso.last_sale == datetime(2021, 1, 20, 8, 49, 56)
    assert audit.selection("108").last_sale is None  # PA5*0*0
    assert audit.paid is not None
    assert (audit.paid.count, audit.paid.count_since_reset) == (41, 3)
    assert audit.test is not None
    assert audit.test.count == 62
    events = {e.code: e for e in audit.events}
    assert len(events) == 10
    assert events["EGS"].occurred_at == datetime(2021, 1, 20, 8, 50, 36)
    assert (events["EGS"].count, events["EGS"].active) == (76, False)
    assert (events["EGT"].count, events["EGT"].active) == (77, True)
    assert audit.crc_ok is True
    # NEC's SE count disagrees with its own segments; that is a warning, not a failure.
    assert any("SE counts 211" in w for w in audit.warnings)


def test_rhevendors() -> None:
    audit = parse_audit(read_sample("rhevendors.eva_dts"))
    assert audit.identity.serial == "RHV0000000000"
    assert audit.identity.model == "LUCEX2Zero"
    assert audit.identity.machine_time == datetime(2023, 11, 27, 10, 11)
    assert len(audit.selections) == 18
    latte = audit.selection("5")
    assert latte.name == "LATTE MACCHIATO BOHNE"  # trailing blanks trimmed
    assert (latte.vends, latte.vends_since_reset, latte.vend_value) == (1859, 1858, 148400)
    no_cup = audit.selection("17")
    assert (no_cup.price, no_cup.vends, no_cup.free_vends) == (0, 9536, 6)
    assert audit.selection("18").price is None  # PA1*18**USD
    assert audit.paid is not None
    assert audit.paid.count == 9612
    assert audit.free is not None
    assert audit.free.count == 7
    events = {e.code: e for e in audit.events}
    # EC occurs twelve times; EA1 keeps the latest occurrence.
    assert events["EC"].occurred_at == datetime(2023, 8, 31, 11, 40)
    assert events["OCM mdb"].occurred_at == datetime(2023, 10, 22, 12, 53)
    assert audit.crc_ok is True
    assert audit.complete


def test_sielaff_has_no_selections_and_no_temperature() -> None:
    audit = parse_audit(read_sample("sielaff.eva_dts"))
    assert audit.identity.serial == "SIE90517939"
    assert audit.identity.dts_version == "V1/1"
    assert audit.identity.control_board_firmware == "0.15.1 r54964"
    assert audit.selections == ()
    assert audit.paid is not None
    paid = audit.paid
    assert (paid.value, paid.count, paid.count_since_reset) == (234850, 1666, 1088)
    # Its MA5 segments carry firmware and locale, not a temperature.
    assert audit.temperature_c is None
    assert "MC5" in audit.ignored_records
    assert not audit.complete


def test_crlf_and_lf_give_the_same_audit() -> None:
    lf = read_sample("nec-kalea.evadts.txt")
    crlf = lf.replace(b"\n", b"\r\n")
    assert parse_audit(crlf) == parse_audit(lf)


def test_damaged_g85_is_reported() -> None:
    data = read_sample("animo.eva_dts").replace(b"PA2*412*", b"PA2*413*")
    audit = parse_audit(data)
    assert audit.crc_ok is False
    assert any("G85" in w for w in audit.warnings)


def test_temperature_from_ma5() -> None:
    audit = parse_audit("DXS*X*VA*V1/1*1\nST*001*0001\nID1*S1\nMA5*TEMP*4,5*C\nMA5*T*41*F\n")
    assert audit.temperature_c == 5.0  # the later reading, converted from Fahrenheit


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("", 0, "empty audit"),
        ("DXS*X*VA*V1/1*1\nST*001*0001\nPA1*1*100*A\nPA2*x*0*0*0\n", 4, "PA2 field 01"),
        ("DXS*X*VA*V1/1*1\nST*001*0001\nPA2*1*0\n", 3, "before any PA1"),
        ("DXS*X*VA*V1/1*1\nthis is not dex\n", 2, "not an EVA-DTS segment"),
        ("DXS*X*VA*V1/1*1\nST*001\x07*0001\n", 2, "control character"),
        ("ID1*A\nPA1*1*2*B\n", 1, "no DXS or ST"),
        ("DXS*X*VA*V1/1*1\nPA1**100*A\n", 2, "without a selection id"),
        ("DXS*X*VA*V1/1*1\nMA5*TEMP*warm\n", 2, "temperature is not a number"),
    ],
)
def test_malformed_audit_names_the_line(text: str, line: int, reason: str) -> None:
    with pytest.raises(DexParseError) as info:
        parse_audit(text)
    assert info.value.line == line
    assert reason in str(info.value)


def test_binary_garbage_is_an_error_not_a_crash() -> None:
    with pytest.raises(DexParseError):
        parse_audit(bytes(range(256)))


def test_latin1_names_are_read() -> None:
    audit = parse_audit(b"DXS*X*VA*V1/1*1\nST*001*0001\nPA1*1*100*M\xfcsli\n")
    assert audit.selection("1").name == "Müsli"


@pytest.mark.parametrize(
    ("date", "time", "expected"),
    [
        ("210120", "085234", datetime(2021, 1, 20, 8, 52, 34)),
        ("20231022", "1253", datetime(2023, 10, 22, 12, 53)),
        ("20230821", "", datetime(2023, 8, 21)),
        ("0", "0", None),
        ("20231341", "1200", None),
        ("abc", "", None),
    ],
)
def test_dates(date: str, time: str, expected: datetime | None) -> None:
    assert parse_date_time(date, time) == expected


NOT_ASCII_DIGITS = ["\u00b2", "\u0663", "\u2460", "+7", "1_0"]
"""Text that str.isdigit() or int() accepts but that is no count in an audit."""
HEAD = "DXS*X*VA*V1/1*1\nST*001*0001\nPA1*1*100*A\n"


@pytest.mark.parametrize("text", NOT_ASCII_DIGITS)
def test_a_count_that_is_not_ascii_digits_names_the_line(text: str) -> None:
    with pytest.raises(DexParseError) as info:
        parse_audit(f"{HEAD}PA1*2*{text}*B\n")
    assert info.value.line == 4
    assert "PA1 field 02 is not a count" in str(info.value)


@pytest.mark.parametrize("text", NOT_ASCII_DIGITS)
def test_optional_numbers_that_are_not_ascii_digits_read_as_unset(text: str) -> None:
    audit = parse_audit(
        f"{HEAD}ID4*{text}*978*EUR\nPA5*{text}*1200\nEA1*EJJ*{text}*{text}*{text}\n"
        f"EA2*EJJ*{text}*{text}\nSE*{text}*0001\n"
    )
    assert audit.identity.decimal_places is None
    assert audit.selection("1").last_sale is None
    (event,) = audit.events
    assert (event.occurred_at, event.duration_min) == (None, None)
    assert (event.count_since_reset, event.count) == (None, None)


def test_the_byte_0xb2_in_an_ea2_count_is_read_not_crashed_on() -> None:
    audit = parse_audit(HEAD.encode() + b"EA2*EJJ*\xb2\n")
    assert audit.events[0].code == "EJJ"
    assert audit.events[0].count_since_reset is None
