"""The Restock page's per-stop widgets: tick a stop off, record its visit once.

Widgets only: what to show and what to post are decided in ``restock_view``.
Streamlit forgets a widget's value when the widget is not drawn (another van
picked, another page opened), so what must survive — stops done, visits
recorded, each visit's Idempotency-Key — lives in plain session-state keys.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import streamlit as st

from console import restock_view, session
from console.api_models import LoadLine, PlannedStop
from console.client import ApiError, ApiUnavailableError, UnauthorizedError
from console.restock_view import LotEntry, RemovalEntry, SlotEntry

DONE_KEY = "restock_done"
"""Machine ids ticked off this session."""
RECORDED_KEY = "restock_recorded"
"""Machine id -> what the API said about its recorded visit."""
VISIT_KEYS_KEY = "restock_visit_keys"
"""Machine id -> the Idempotency-Key of the visit being entered there."""
MAX_LOT_LINES = 4
MAX_COUNT = 10_000
"""The most a slot is ever counted at (the agent's wire contract bounds counts so)."""
RETRY_TEXT = (
    "The visit may not have reached the server ({reason}). Press **Record visit** again "
    "when you have signal: it is sent with the same key, so it is recorded once."
)


def _store(name: str) -> dict[str, Any]:
    store: dict[str, Any] = st.session_state.setdefault(name, {})
    return store


def done_ids() -> set[str]:
    """Return the machine ids ticked off in this browser session."""
    return set(_store(DONE_KEY))


def _tick_key(machine_id: str) -> str:
    return f"restock_tick_{machine_id}"


def _sync_tick(machine_id: str) -> None:
    done = _store(DONE_KEY)
    if st.session_state.get(_tick_key(machine_id)):
        done[machine_id] = True
    else:
        done.pop(machine_id, None)


def _mark_done(machine_id: str) -> None:
    _store(DONE_KEY)[machine_id] = True
    st.session_state[_tick_key(machine_id)] = True


def visit_key(machine_id: str) -> str:
    """Return this stop's Idempotency-Key, made once per visit form and kept for retries."""
    keys = _store(VISIT_KEYS_KEY)
    if machine_id not in keys:
        keys[machine_id] = uuid.uuid4().hex
    key: str = keys[machine_id]
    return key


def tick_box(stop: PlannedStop) -> None:
    """Draw the stop's "done" checkbox, backed by the session's set of stops done."""
    key = _tick_key(stop.machine_id)
    st.session_state.setdefault(key, stop.machine_id in _store(DONE_KEY))
    st.checkbox("Done: stop visited", key=key, on_change=_sync_tick, args=(stop.machine_id,))


def _slot_fields(mid: str, line: LoadLine, lot_lines: int) -> SlotEntry:
    """Draw one slot's fields (stacked, full width: a phone has no room for columns)."""
    pre = f"visit_{mid}_{line.slot}"
    st.markdown(f"**Slot {line.slot} · {line.product}** — load {line.quantity}")
    found = st.number_input("Found before loading", min_value=0, max_value=MAX_COUNT, step=1,
                            value=None,
                            placeholder="not counted", key=f"{pre}_found")
    taken = st.number_input("Taken out", min_value=0, max_value=999, step=1,
                            value=line.replace, key=f"{pre}_removed")
    reason = st.selectbox("Why taken out", restock_view.REMOVAL_REASONS,
                          format_func=restock_view.REMOVAL_LABELS.__getitem__,
                          key=f"{pre}_reason")
    taken_lot = st.text_input("Lot taken out (optional)", max_chars=40,
                              key=f"{pre}_removed_lot")
    lots: list[LotEntry] = []
    for n in range(lot_lines):
        lot_no = st.text_input(f"Lot number loaded{f' ({n + 1})' if n else ''}",
                               max_chars=40, placeholder="type or scan",
                               key=f"{pre}_lot{n}")
        product = st.text_input("Product", value=line.product, max_chars=48,
                                key=f"{pre}_product{n}")
        expiry = st.date_input("Expiry", value=None, min_value=date(2000, 1, 1),
                               key=f"{pre}_expiry{n}")
        qty = st.number_input("Quantity loaded", min_value=0, max_value=999, step=1,
                              value=line.quantity if n == 0 else 0, key=f"{pre}_qty{n}")
        lots.append(LotEntry(lot_no, product.strip(), expiry, int(qty)))
    after = st.number_input("Count after loading", min_value=0, max_value=MAX_COUNT, step=1,
                            value=None,
                            placeholder="found − taken out + loaded", key=f"{pre}_after")
    return SlotEntry(
        slot=line.slot,
        found=None if found is None else int(found),
        removed=RemovalEntry(int(taken), str(reason), taken_lot),
        loaded=tuple(lots),
        count_after=None if after is None else int(after),
    )


def _post(stop: PlannedStop, body: dict[str, Any]) -> None:
    mid = stop.machine_id
    key = visit_key(mid)
    try:
        visit = session.api().record_visit(body, idempotency_key=key)
    except UnauthorizedError as exc:
        session.report(exc, "The visit was not recorded")
        return
    except ApiError as exc:
        # No answer, a server fault or a race with the original: the same key makes
        # the retry safe. A refusal (404, 422) needs the form changed instead.
        if isinstance(exc, ApiUnavailableError) or exc.status_code in (None, 409) or (
                exc.status_code is not None and exc.status_code >= 500):
            st.error(RETRY_TEXT.format(reason=exc))
        else:
            session.report(exc, "The visit was not recorded")
        return
    _store(RECORDED_KEY)[mid] = {
        "id": visit.id,
        "lines": restock_view.visit_summary(visit.counts, visit.discrepancies,
                                            visit.resolved_alerts),
    }
    _mark_done(mid)
    st.rerun()


def _another_visit(machine_id: str) -> None:
    _store(RECORDED_KEY).pop(machine_id, None)
    _store(VISIT_KEYS_KEY).pop(machine_id, None)


def visit_section(stop: PlannedStop, today: date) -> None:
    """Draw the stop's visit form, or what its recorded visit did."""
    mid = stop.machine_id
    recorded = _store(RECORDED_KEY).get(mid)
    if recorded is not None:
        st.success(f"Visit #{recorded['id']} recorded.")
        st.markdown("  \n".join(recorded["lines"]))
        st.button("Record another visit here", key=f"visit_again_{mid}",
                  on_click=_another_visit, args=(mid,))
        return
    lot_lines = int(st.number_input("Lots per slot", min_value=1, max_value=MAX_LOT_LINES,
                                    value=1, step=1, key=f"visit_{mid}_lot_lines"))
    with st.form(f"visit_{mid}"):
        entries = [_slot_fields(mid, line, lot_lines)
                   for line in sorted(stop.load, key=lambda item: item.slot)]
        sent = st.form_submit_button("Record visit", type="primary")
    if not sent:
        return
    draft = restock_view.visit_body(mid, entries, today)
    if draft.body is None:
        st.error("  \n".join(draft.problems))
        return
    _post(stop, draft.body)
