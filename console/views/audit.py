"""Audit trail (admin): who changed what and when, filtered, a page at a time."""

from __future__ import annotations

import streamlit as st

from console import audit_view, session
from console.client import ApiError
from console.roles import Action

PAGE_SIZE = 100

st.title("Audit trail")
if not session.may(Action.READ_AUDIT):
    st.stop()  # app.py lists this page for admin only; the API refuses others anyway
api = session.api()

cols = st.columns(4)
actor = cols[0].text_input("Who", key="audit_actor", help="a token name, OIDC subject or cli:user")
action = cols[1].text_input("What", key="audit_action", help="e.g. alert.resolve, token.create")
object_type = cols[2].text_input("Object type", key="audit_object_type", help="e.g. alert")
object_id = cols[3].text_input("Object id", key="audit_object_id")
page_number = int(st.number_input("Page", min_value=1, value=1, step=1, key="audit_page"))

try:
    page = api.audit(
        actor=actor.strip() or None,
        action=action.strip() or None,
        object_type=object_type.strip() or None,
        object_id=object_id.strip() or None,
        limit=PAGE_SIZE,
        offset=(page_number - 1) * PAGE_SIZE,
    )
except ApiError as exc:
    session.report(exc, "Cannot load the audit trail")
    st.stop()

pages = max(1, -(-page.count // PAGE_SIZE))
st.caption(f"{page.count} records · page {page_number} of {pages} · newest first")
if page.data:
    st.dataframe(audit_view.audit_rows(page.data), hide_index=True, key="audit_table")
else:
    st.info("No records match.")
