"""Restock: what to load at each machine and in the van, and recording a visit."""

from __future__ import annotations

import streamlit as st

from console import fleet_view, restock_view, session
from console.client import ApiError
from console.roles import Action

st.title("Restock")
api = session.api()

try:
    machines = api.all_machines()
except ApiError as exc:
    session.report(exc, "Cannot load the machines")
    st.stop()

rows = restock_view.pick_rows(machines)
list_col, van_col = st.columns([3, 1])
with list_col:
    visits = len({row["machine"] for row in rows})
    st.subheader(f"Pick list ({visits} machines)")
    if rows:
        st.dataframe(rows, hide_index=True, key="pick_list")
    else:
        st.success("Every reachable machine is at par.")
with van_col:
    st.subheader("Load the van")
    st.dataframe(restock_view.van_totals(rows), hide_index=True, key="van_totals")

if not session.may(Action.RECORD_VISIT):
    st.stop()  # the pick list is readable; recording a visit is for outreach and admin

st.subheader("Record a visit")
ordered = fleet_view.sort_by_urgency(machines)
if not ordered:
    st.info("No machines are registered yet.")
    st.stop()
by_id = {m.id: m for m in ordered}
machine_id = st.selectbox(
    "Machine",
    list(by_id),
    format_func=lambda mid: fleet_view.machine_label(by_id[mid]),
    key="visit_machine",
)
machine = by_id[machine_id]
defaults = restock_view.visit_defaults(machine)
with st.form("restock_visit"):
    st.caption("Counts left in each slot after loading.")
    counts: dict[int, int] = {}
    for slot in sorted(machine.slots, key=lambda s: s.slot):
        counts[slot.slot] = int(
            st.number_input(
                f"Slot {slot.slot} · {slot.product or 'unknown product'}",
                min_value=0,
                max_value=slot.capacity if slot.capacity else 10_000,
                value=min(defaults[slot.slot], slot.capacity or defaults[slot.slot]),
                step=1,
                key=f"visit_{machine_id}_{slot.slot}",
            )
        )
    submitted = st.form_submit_button("Record visit")
if submitted:
    try:
        visit = api.record_restock_visit(machine_id, counts)
    except ApiError as exc:
        session.report(exc, "The visit was not recorded")
    else:
        st.success(f"Visit #{visit.id} recorded for {machine.name}.")
