"""Alerts: filter them, acknowledge or resolve one."""

from __future__ import annotations

import streamlit as st

from console import fleet_view, responsive, session
from console.api_models import AlertStatus
from console.client import ApiError

ALL = "all"
# Alerts shown as cards on a phone; the filters narrow a longer list. (A comment, not a
# docstring: Streamlit's magic would print a bare string on the page.)
PHONE_CARDS = 50

st.title("Alerts")
api = session.api()

filters = st.columns(3)
status_choice = filters[0].selectbox(
    "Status", [s.value for s in AlertStatus] + [ALL], index=0, key="alerts_status"
)
try:
    machines = api.all_machines()
except ApiError as exc:
    session.report(exc, "Cannot load the machines")
    st.stop()
names = {m.id: m.name for m in machines}
machine_choice = filters[1].selectbox(
    "Machine",
    [ALL, *sorted(names)],
    format_func=lambda mid: "all machines" if mid == ALL else f"{names[mid]} ({mid})",
    key="alerts_machine",
)

status = None if status_choice == ALL else AlertStatus(status_choice)
try:
    page = api.alerts(status=status, machine_id=None if machine_choice == ALL else machine_choice)
except ApiError as exc:
    session.report(exc, "Cannot load the alerts")
    st.stop()

type_choice = filters[2].selectbox(
    "Type", [ALL, *fleet_view.alert_types(page.data)], key="alerts_type"
)
alerts = [a for a in page.data if type_choice in (ALL, a.type)]

st.caption(f"{len(alerts)} of {page.count} alerts")
if not alerts:
    st.info("No alerts match.")
    st.stop()
wide, narrow = responsive.wide_and_narrow("alerts")
wide.dataframe(fleet_view.alert_rows(alerts, names), hide_index=True, key="alerts_table")
# Phones: one card per alert, nothing off-screen.
for alert in fleet_view.urgent_first(alerts)[:PHONE_CARDS]:
    narrow.container(border=True).markdown(fleet_view.alert_card(alert, names))
if len(alerts) > PHONE_CARDS:
    narrow.caption(f"The first {PHONE_CARDS}; filter to see others.")

# Only alerts this role may act on get buttons (the API refuses the others anyway).
actionable = [
    a for a in alerts if a.status is not AlertStatus.RESOLVED and session.may_act_on_alert(a)
]
if actionable:
    st.subheader("Act on an alert")
    by_id = {str(a.id): a for a in actionable}
    chosen = st.selectbox(
        "Alert",
        list(by_id),
        format_func=lambda aid: fleet_view.alert_label(by_id[aid], names),
        key="alerts_chosen",
    )
    ack_col, resolve_col = st.columns(2)
    try:
        if ack_col.button(
            "Acknowledge",
            key="alerts_ack",
            disabled=by_id[chosen].status is not AlertStatus.OPEN,
        ):
            api.acknowledge_alert(by_id[chosen].id)
            st.success(f"Alert #{chosen} acknowledged.")
        if resolve_col.button("Resolve", key="alerts_resolve"):
            api.resolve_alert(by_id[chosen].id)
            st.success(f"Alert #{chosen} resolved.")
    except ApiError as exc:
        session.report(exc, "The API refused")
