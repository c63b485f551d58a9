"""Machine detail: slots, stock, events, temperature and stock history, discrepancies."""

from __future__ import annotations

import streamlit as st

from console import charts, fleet_view, machine_view, session
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


def history() -> None:
    """Draw the machine's temperature and stock over time and its stock discrepancies."""
    temperature_tab, stock_tab, discrepancy_tab = st.tabs(
        ["Temperature", "Stock over time", "Discrepancies"])
    with temperature_tab:
        span = st.radio("Period", list(machine_view.HISTORY_HOURS), index=1, horizontal=True,
                        key="machine_temperature_span")
        try:
            temps = api.temperatures(machine_id, hours=machine_view.HISTORY_HOURS[str(span)])
        except NotFoundError:
            return  # the machine is gone: the tiles above say so
        except ApiError as exc:
            session.report(exc, "Cannot load the temperature history")
        else:
            st.caption(machine_view.temperature_summary(temps))
            if temps.data:
                st.altair_chart(charts.temperature_chart(machine_view.temperature_rows(temps),
                                                         temps.safe_min_c, temps.safe_max_c),
                                width="stretch", key="machine_temperature_chart")
    with stock_tab:
        days = st.radio("Period", list(machine_view.STOCK_DAYS), index=1, horizontal=True,
                        key="machine_stock_span")
        try:
            stock = api.stock_history(machine_id, days=machine_view.STOCK_DAYS[str(days)])
        except NotFoundError:
            return  # the machine is gone: the tiles above say so
        except ApiError as exc:
            session.report(exc, "Cannot load the stock history")
        else:
            if stock.data:
                st.altair_chart(charts.stock_chart(machine_view.stock_rows(stock)),
                                width="stretch", key="machine_stock_chart")
                st.caption("Restocks set a slot's count, each dispense takes one away. "
                           "Corrections from stock reports are listed under Discrepancies.")
            else:
                st.info("No stock changes in this period.")
    with discrepancy_tab:
        try:
            found = api.discrepancies(machine_id)
        except NotFoundError:
            return  # the machine is gone: the tiles above say so
        except ApiError as exc:
            session.report(exc, "Cannot load the discrepancies")
        else:
            if found.data:
                st.caption(f"{found.count} times the books and a count disagreed.")
                st.dataframe(machine_view.discrepancy_rows(found.data), hide_index=True,
                             key="machine_discrepancies")
            else:
                st.success("The books and every count agreed.")


history()
