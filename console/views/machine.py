"""Machine detail: slots, stock and the latest events of one machine."""

from __future__ import annotations

import streamlit as st

from console import fleet_view, session
from console.client import ApiError, NotFoundError

st.title("Machine detail")
api = session.api()

try:
    machines = fleet_view.sort_by_urgency(api.all_machines())
except ApiError as exc:
    session.report(exc, "Cannot load the machines")
    st.stop()
if not machines:
    st.info("No machines are registered yet.")
    st.stop()

names = {m.id: m.name for m in machines}
wanted = st.query_params.get("machine")
ids = list(names)
machine_id = st.selectbox(
    "Machine",
    ids,
    index=ids.index(wanted) if wanted in names else 0,
    format_func=lambda mid: f"{names[mid]} ({mid})",
    key="machine_id",
)
st.query_params["machine"] = machine_id


@st.fragment(run_every=session.refresh_s())
def live_machine() -> None:
    """Draw one machine's state, slots and events from fresh API data."""
    try:
        machine = api.machine(machine_id)
    except NotFoundError:
        st.warning(f"Machine {machine_id} is no longer registered.")
        return
    except ApiError as exc:
        session.report(exc, f"Cannot load machine {machine_id}")
        return
    tiles = st.columns(4)
    tiles[0].metric("State", fleet_view.HEALTH_LABELS[machine.health])
    tiles[1].metric("Link", machine.status.value)
    tiles[2].metric("Stock", fleet_view.stock_text(machine))
    tiles[3].metric("Open alerts", machine.open_alerts)
    st.caption(
        f"{machine.site or 'no site'} · firmware {machine.firmware or 'unknown'} · "
        f"last seen {machine.last_seen or 'never'}"
    )
    st.subheader("Slots")
    st.dataframe(
        fleet_view.slot_rows(machine),
        hide_index=True,
        key="slots_table",
        column_config={
            "fill": st.column_config.ProgressColumn("fill", min_value=0.0, max_value=1.0),
        },
    )
    st.subheader("Recent events")
    if machine.recent_events:
        rows = fleet_view.event_rows(machine.recent_events)
        st.dataframe(rows, hide_index=True, key="events_table")
    else:
        st.info("No events yet.")


live_machine()
