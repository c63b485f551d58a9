"""Account: who the console is signed in as and what that role may do here."""

from __future__ import annotations

import streamlit as st

from console import roles, session

st.title("Account")
signed_in = session.current()
if signed_in is None:  # app.py shows this page only when signed in
    st.stop()
identity = signed_in.identity
cols = st.columns(3)
cols[0].metric("Name", identity.name)
cols[1].metric("Role", identity.role)
cols[2].metric("Areas", ", ".join(identity.areas) if identity.areas else "all")
st.caption(f"Signed in with a {signed_in.via}.")

if signed_in.role is None:
    st.warning(f"This console does not know the role {identity.role!r}; it shows no pages for it.")
else:
    st.write(f"**What this role is for:** {roles.PURPOSE[signed_in.role]}.")
    if signed_in.role is roles.Role.PROVISIONING:
        st.info(
            "Provisioning registers and revokes machines through the API; "
            "the console has no pages for it."
        )
