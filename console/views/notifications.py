"""Notifications (admin): the routes alerts go out by, a test message, and every delivery."""

from __future__ import annotations

import streamlit as st

from console import notify_view, session
from console.client import ApiError
from console.roles import Action

ALERT_TYPES = ["low_stock", "empty_slot", "machine_offline", "delivery_gap",
               "temperature_excursion", "door_open", "vend_failure", "overdose_hotspot",
               "dead_letter_flood", "notification_failed",
               "report.weekly"]  # not an alert: the weekly situation report, only if chosen
STATES = ["", "pending", "delivering", "delivered", "failed", "held", "digested", "cancelled"]
_FLASH_KEY = "notify_flash"

st.title("Notifications")
if not session.may(Action.MANAGE_NOTIFICATIONS):
    st.stop()  # app.py lists this page for admin only; the API refuses others anyway
api = session.api()
if flash := st.session_state.pop(_FLASH_KEY, None):
    st.success(flash)

with st.form("create_route", clear_on_submit=True):
    st.subheader("Add a route")
    cols = st.columns([2, 1, 3])
    name = cols[0].text_input("Name", key="route_name", help="e.g. outreach-sms")
    channel = cols[1].selectbox("Channel", ["webhook", "email", "apprise"], key="route_channel")
    target = cols[2].text_input(
        "Target", key="route_target",
        help="webhook: https URL · email: addresses, comma-separated · apprise: a service URL")
    cols = st.columns([3, 1, 2, 2])
    types = cols[0].multiselect("Alert types", ALERT_TYPES, key="route_types",
                                help="none chosen: every alert type; report.weekly "
                                     "(the weekly report) only when chosen")
    severity = cols[1].selectbox("Minimum severity", ["info", "warning", "critical"],
                                 key="route_severity")
    areas_text = cols[2].text_input("Areas", key="route_areas", help="comma-separated; empty: all")
    secret = cols[3].text_input("Webhook secret", key="route_secret", type="password",
                                help="16+ characters; receivers verify the signature with it")
    create = st.form_submit_button("Add route")
if create:
    try:
        made = api.create_notification_route(notify_view.route_body(
            name=name, channel=channel, target=target, secret=secret, alert_types=types,
            min_severity=severity, areas_text=areas_text))
    except ApiError as exc:
        session.report(exc, "The route was not added")
    else:
        st.session_state[_FLASH_KEY] = f"Route {made.name!r} added."
        st.rerun()

try:
    routes = api.notification_routes()
except ApiError as exc:
    session.report(exc, "Cannot load the notification routes")
    st.stop()
st.subheader(f"Routes ({routes.count})")
if routes.data:
    st.dataframe(notify_view.route_rows(routes.data), hide_index=True, key="routes_table")
    names = {f"{r.id} {r.name}": r.id for r in routes.data}
    with st.form("route_actions"):
        chosen = st.selectbox("Route", list(names), key="route_chosen")
        left, right = st.columns(2)
        test = left.form_submit_button("Send a test message")
        delete = right.form_submit_button("Delete route")
    if test or delete:
        route_id = names[chosen]
        try:
            if test:
                delivery = api.test_notification_route(route_id)
                st.session_state[_FLASH_KEY] = (
                    f"Test message queued (delivery {delivery.delivery_id}); see below.")
            else:
                api.delete_notification_route(route_id)
                st.session_state[_FLASH_KEY] = f"Route {chosen!r} deleted."
        except ApiError as exc:
            session.report(exc, "That did not work")
        else:
            st.rerun()
else:
    st.info("No routes yet: alerts stay in the console until one is added.")

st.subheader("Deliveries")
state = st.selectbox("State", STATES, key="deliveries_state", format_func=lambda s: s or "any")
try:
    page = api.notifications(state=state or None, limit=200)
except ApiError as exc:
    session.report(exc, "Cannot load the deliveries")
    st.stop()
st.caption(f"{page.count} deliveries · newest 200 shown")
if page.data:
    st.dataframe(notify_view.delivery_rows(page.data), hide_index=True, key="deliveries_table")
