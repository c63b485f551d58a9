"""Machines admin: the fleet list, register a machine, edit one, send it its planogram.

A planogram, par or threshold change is a command to the machine: it shows as
pending until the machine answers, and the books change only then.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from console import admin_view, session
from console.api_models import MachinePublic
from console.client import ApiError
from console.roles import Action

_FLASH_KEY = "admin_flash"

st.title("Machines admin")
if not session.may(Action.MANAGE_MACHINES):
    st.stop()  # app.py lists this page for admin only; the API refuses others anyway
api = session.api()
if flash := st.session_state.pop(_FLASH_KEY, None):
    st.success(flash)

try:
    machines = api.all_machines()
except ApiError as exc:
    session.report(exc, "Cannot load the machines")
    st.stop()

st.subheader(f"Machines ({len(machines)})")
if machines:
    st.dataframe(admin_view.machine_rows(machines), hide_index=True, key="admin_machines")


def _show_problems(problems: list[str]) -> None:
    st.error("  \n".join(problems))


def _slot_row(machine_id: str, row: dict[str, Any]) -> dict[str, Any]:
    """Draw one slot's planogram fields on a line; return what they hold."""
    key = f"admin_pg_{machine_id}_{row['slot']}"
    cols = st.columns([1, 3, 2, 2, 2])
    cols[0].markdown(f"**Slot {row['slot']}**")
    product = cols[1].text_input("Product", value=row["product"], max_chars=48,
                                 key=f"{key}_product")
    capacity = cols[2].number_input("Capacity", min_value=0, max_value=admin_view.MAX_COUNT,
                                    value=row["capacity"], step=1, key=f"{key}_capacity")
    par = cols[3].number_input("Par", min_value=0, max_value=admin_view.MAX_COUNT,
                               value=row["par"], step=1, key=f"{key}_par")
    low = cols[4].number_input("Low threshold", min_value=0, max_value=admin_view.MAX_COUNT,
                               value=row["low_threshold"], step=1, key=f"{key}_low")
    return {"slot": row["slot"], "product": product, "capacity": capacity, "par": par,
            "low_threshold": low}


with st.expander("Register a machine"), st.form("admin_register", clear_on_submit=False):
    new_id = st.text_input("Machine id", max_chars=63, key="admin_new_id",
                           help="also its MQTT user name, e.g. phl-031")
    new_name = st.text_input("Name", max_chars=120, key="admin_new_name")
    new_lat = st.number_input("Latitude", min_value=-90.0, max_value=90.0, value=None,
                              format="%.6f", key="admin_new_lat")
    new_lon = st.number_input("Longitude", min_value=-180.0, max_value=180.0, value=None,
                              format="%.6f", key="admin_new_lon")
    new_site = st.text_input("Site (optional)", max_chars=120, key="admin_new_site")
    new_area = st.text_input("Area (optional)", max_chars=64, key="admin_new_area")
    register = st.form_submit_button("Register and make its credential")
if register:
    draft = admin_view.device_body(machine_id=new_id, name=new_name, lat=new_lat, lon=new_lon,
                                   site=new_site, area=new_area)
    if draft.body is None:
        _show_problems(draft.problems)
    else:
        try:
            credential = api.register_device(draft.body)
        except ApiError as exc:
            session.report(exc, "The machine was not registered")
        else:
            st.success(f"Machine {credential.machine_id} registered. Copy its agent "
                       "configuration now: the password in it is not shown again.")
            st.code(credential.agent_config, language="toml")

if not machines:
    st.stop()

by_id = {m.id: m for m in machines}
chosen = st.selectbox("Machine to edit", list(by_id), key="admin_machine",
                      format_func=lambda mid: f"{mid} · {by_id[mid].name}")
machine: MachinePublic = by_id[chosen]

st.subheader("Name and place")
with st.form(f"admin_place_{machine.id}"):
    name = st.text_input("Name", value=machine.name, max_chars=120,
                         key=f"admin_name_{machine.id}")
    site = st.text_input("Site", value=machine.site or "", max_chars=120,
                         key=f"admin_site_{machine.id}")
    lat = st.number_input("Latitude", min_value=-90.0, max_value=90.0, value=machine.lat,
                          format="%.6f", key=f"admin_lat_{machine.id}")
    lon = st.number_input("Longitude", min_value=-180.0, max_value=180.0, value=machine.lon,
                          format="%.6f", key=f"admin_lon_{machine.id}")
    save_place = st.form_submit_button("Save name and place")
if save_place:
    draft = admin_view.place_changes(machine, name=name, site=site, lat=lat, lon=lon)
    if draft.body is None:
        _show_problems(draft.problems)
    else:
        try:
            api.update_machine(machine.id, draft.body)
        except ApiError as exc:
            session.report(exc, "The machine was not changed")
        else:
            st.session_state[_FLASH_KEY] = f"{machine.id}: {', '.join(draft.body)} saved."
            st.rerun()

st.subheader("Planogram, par and low thresholds")
st.caption("Sent to the machine as a command; the books change when it confirms.")
current = admin_view.planogram_rows(machine)
extra = int(st.number_input("New slots to add", min_value=0, max_value=10, value=0, step=1,
                            key=f"admin_extra_{machine.id}"))
with st.form(f"admin_planogram_{machine.id}"):
    rows = [_slot_row(machine.id, row) for row in admin_view.with_new_slots(current, extra)]
    send = st.form_submit_button("Send planogram to the machine")
if send:
    draft = admin_view.planogram_command(rows, current)
    if draft.body is None:
        _show_problems(draft.problems)
    else:
        try:
            sent = api.send_command(machine.id, draft.body)
        except ApiError as exc:
            session.report(exc, "The planogram was not sent")
        else:
            st.session_state[_FLASH_KEY] = (
                f"Planogram sent to {machine.id} as command {sent.command_id}: pending until "
                "the machine answers.")
            st.rerun()


@st.fragment(run_every=session.refresh_s())
def command_states(machine_id: str) -> None:
    """List the machine's latest commands; redrawn every few seconds while one is pending."""
    try:
        commands = api.commands(machine_id).data
    except ApiError as exc:
        session.report(exc, "Cannot load the machine's commands")
        return
    waiting = admin_view.pending(commands)
    st.subheader(f"Commands ({len(waiting)} pending)")
    if not commands:
        st.caption("No command sent to this machine yet.")
    for command in commands:
        st.markdown(admin_view.command_line(command))


command_states(machine.id)
