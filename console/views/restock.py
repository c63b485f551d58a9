"""Restock: a van's route for the shift, stop by stop, and recording each visit.

Built for a phone (390 x 844 CSS px): one column, one expander per stop with
short ``label: value`` lines, no wide tables. The plan comes from the backend
and is kept for the session, so ticking stops off never re-plans the route.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import streamlit as st

from console import restock_view, session, visit_form
from console.api_models import MachinePublic, RestockPlan
from console.client import ApiError
from console.restock_map import route_deck
from console.roles import Action
from console.settings import DEPOT_PATTERN, get_settings

REQUEST_KEY = "restock_request"
PLAN_KEY = "restock_plan"
ISSUED_KEY = "restock_issued"  # (id, by, at) of the issued plan shown; absent for a preview
# No bare string literals below: Streamlit's "magic" would draw them on the page.
MAP_HEIGHT_PX = 340

st.title("Restock")
api = session.api()
settings = get_settings()
zone = ZoneInfo(settings.timezone)


def _default_request() -> dict[str, Any] | None:
    """Return the shift to plan when the page opens: settings, now, the fleet's middle."""
    machines: list[MachinePublic] = []
    if settings.depot is None:
        try:
            machines = api.all_machines()
        except ApiError as exc:
            session.report(exc, "Cannot load the machines")
            return None
    now = datetime.now(zone)
    return {
        "depot": restock_view.default_depot(machines, settings.depot),
        "date": now.date(),
        "time": time(now.hour, now.minute),
        "hours": settings.shift_hours,
        "vans": settings.vans,
    }


request: dict[str, Any] | None = st.session_state.get(REQUEST_KEY)
if request is None:
    request = _default_request()
    if request is None:
        st.stop()
    st.session_state[REQUEST_KEY] = request

# A shared link (restock?plan=ID) opens the plan a lead issued, as issued.
wanted = str(st.query_params.get("plan", ""))
shown = st.session_state.get(ISSUED_KEY)
if wanted.isdigit() and (shown is None or str(shown[0]) != wanted):
    try:
        issued = api.issued_plan(int(wanted))
    except ApiError as exc:
        session.report(exc, f"Cannot open issued plan #{wanted}")
    else:
        st.session_state[PLAN_KEY] = issued.plan
        st.session_state[ISSUED_KEY] = (issued.id, issued.issued_by, issued.issued_at)

plan: RestockPlan | None = st.session_state.get(PLAN_KEY)
# Folded: on a phone the route and the stops come first.
with st.expander("Shift: depot, start, vans"), st.form("restock_shift"):
    depot = st.text_input("Depot (LAT,LON)", value=request["depot"], max_chars=64,
                          key="restock_depot")
    day = st.date_input("Shift date", value=request["date"], key="restock_date")
    leaves = st.time_input("Vans leave at", value=request["time"], step=900,
                           key="restock_time")
    hours = st.number_input("Shift hours", min_value=0.25, max_value=24.0,
                            value=float(request["hours"]), step=0.5, key="restock_hours")
    vans = st.number_input("Vans", min_value=1, max_value=50, value=int(request["vans"]),
                           step=1, key="restock_vans")
    replan = st.form_submit_button("Plan the shift")
if replan:
    request = {"depot": depot.strip(), "date": day, "time": leaves, "hours": float(hours),
               "vans": int(vans)}
    st.session_state[REQUEST_KEY] = request
    st.session_state.pop(ISSUED_KEY, None)
    st.query_params.pop("plan", None)
    plan = None

if plan is None:
    if not re.fullmatch(DEPOT_PATTERN, request["depot"]):
        st.error(f"The depot {request['depot']!r} is not LAT,LON in degrees, "
                 "e.g. 39.9526,-75.1652.")
        st.stop()
    start = datetime.combine(request["date"], request["time"], tzinfo=zone)
    try:
        with st.spinner("Planning the shift…"):
            plan = api.restock_plan(depot=request["depot"], shift_start=start,
                                    shift_hours=request["hours"], vans=request["vans"])
    except ApiError as exc:
        session.report(exc, "Cannot plan the shift")
        st.stop()
    st.session_state[PLAN_KEY] = plan

issued_as = st.session_state.get(ISSUED_KEY)
if issued_as is not None:
    plan_id, by, at = issued_as
    st.caption(f"Issued plan #{plan_id} by {by} at {restock_view.clock(at, zone)}; "
               f"crews open it at this page's address with ?plan={plan_id}.")
elif session.may(Action.RECORD_VISIT):
    st.caption("A preview: the machines' next planned visits change only when it is issued.")
    if st.button("Issue this plan", key="restock_issue"):
        start = datetime.combine(request["date"], request["time"], tzinfo=zone)
        try:
            with st.spinner("Issuing the plan…"):
                issued = api.issue_restock_plan(depot=request["depot"], shift_start=start,
                                                shift_hours=request["hours"],
                                                vans=request["vans"])
        except ApiError as exc:
            session.report(exc, "The plan was not issued")
        else:
            # The issued plan is planned afresh: show it, not the preview.
            st.session_state[PLAN_KEY] = issued.plan
            st.session_state[ISSUED_KEY] = (issued.id, issued.issued_by, issued.issued_at)
            st.query_params["plan"] = str(issued.id)
            st.rerun()

routes = [van for van in plan.vans if van.stops]
if not routes:
    st.success("No machine needs a visit this shift.")
else:
    by_number = {van.van: van for van in routes}
    chosen = st.radio("Van", list(by_number), key="restock_van",
                      format_func=lambda n: restock_view.van_label(by_number[n], zone))
    van = by_number[chosen if chosen in by_number else routes[0].van]
    done = visit_form.done_ids()
    st.caption(restock_view.progress(van, done))
    st.pydeck_chart(
        route_deck(restock_view.route_path(plan, van),
                   restock_view.stop_points(van, done, zone)),
        height=MAP_HEIGHT_PX,
    )
    with st.expander(f"Load the van ({van.items} items)"):
        st.markdown("  \n".join(restock_view.load_lines(van)))

    st.subheader("Stops")
    upcoming = restock_view.next_stop(van, done)
    may_record = session.may(Action.RECORD_VISIT)
    today = datetime.now(zone).date()
    for stop in van.stops:
        title = restock_view.stop_title(stop, zone, done=stop.machine_id in done)
        with st.expander(title, expanded=upcoming is not None and stop is upcoming):
            st.markdown("  \n".join(restock_view.stop_lines(stop, zone)))
            if may_record:
                visit_form.visit_section(stop, today)
            visit_form.tick_box(stop)

left_out = restock_view.left_out_lines(plan)
if left_out:
    with st.expander(f"Not on any route ({len(left_out)})"):
        st.markdown("  \n".join(left_out))
