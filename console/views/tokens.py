"""API tokens (admin): list them, create one (shown once), revoke one."""

from __future__ import annotations

import streamlit as st

from console import roles, session
from console.client import ApiError
from console.roles import Action, Role

_FLASH_KEY = "tokens_flash"

st.title("API tokens")
if not session.may(Action.MANAGE_TOKENS):
    st.stop()  # app.py lists this page for admin only; the API refuses others anyway
api = session.api()
if flash := st.session_state.pop(_FLASH_KEY, None):
    st.success(flash)

with st.form("create_token", clear_on_submit=True):
    st.subheader("Create a token")
    cols = st.columns([2, 1, 2, 1])
    name = cols[0].text_input("Name", key="token_name", help="who or what holds it, e.g. van-2")
    role = cols[1].selectbox("Role", [r.value for r in Role], key="token_role", index=1)
    areas_text = cols[2].text_input("Areas", key="token_areas", help="comma-separated; empty: all")
    expires_in = cols[3].text_input("Expires in", key="token_expires", help="90d; empty: never")
    st.caption(" · ".join(f"**{r.value}**: {roles.PURPOSE[r]}" for r in Role))
    create = st.form_submit_button("Create token")
if create:
    areas = [a.strip() for a in areas_text.split(",") if a.strip()]
    try:
        created = api.create_token(
            name=name.strip(), role=role, areas=areas, expires_in=expires_in.strip() or None
        )
    except ApiError as exc:
        session.report(exc, "The token was not created")
    else:
        st.success(
            f"Token {created.name!r} ({created.role}) created. Copy it now: it is not shown again."
        )
        st.code(created.token, language=None)

try:
    listed = api.tokens(include_revoked=st.toggle("Show revoked tokens", key="tokens_revoked"))
except ApiError as exc:
    session.report(exc, "Cannot load the tokens")
    st.stop()

st.subheader(f"Tokens ({listed.count})")
rows = [
    {
        "name": t.name,
        "role": t.role,
        "prefix": t.prefix,
        "areas": ", ".join(t.areas) or "all",
        "state": t.state,
        "created": t.created_at,
        "expires": t.expires_at,
        "last used": t.last_used_at,
    }
    for t in listed.data
]
if rows:
    st.dataframe(rows, hide_index=True, key="tokens_table")
live = [t.name for t in listed.data if t.state == "live"]
if live:
    with st.form("revoke_token"):
        target = st.selectbox("Token to revoke", live, key="revoke_name")
        revoke = st.form_submit_button("Revoke")
    if revoke:
        try:
            api.revoke_token(target)
        except ApiError as exc:
            session.report(exc, "The token was not revoked")
        else:
            st.session_state[_FLASH_KEY] = f"Token {target!r} revoked: the API now refuses it."
            st.rerun()  # list it as revoked
