"""The Streamlit console's entry script: sign-in, then the pages the signed-in role may see."""

from __future__ import annotations

import streamlit as st

from console import navigation, session

st.set_page_config(page_title="NaloxNet console", page_icon=":material/medication:", layout="wide")

signed_in = session.current()
if signed_in is None:
    pages = [st.Page(navigation.SIGN_IN_FILE, title="Sign in", icon=":material/login:",
                     default=True)]
else:
    # A page the role may not see is not registered at all: its URL leads nowhere.
    pages = [
        st.Page(spec.file, title=spec.title, icon=spec.icon, url_path=spec.url_path, default=n == 0)
        for n, spec in enumerate(navigation.pages_for(signed_in.role))
    ]
    with st.sidebar:
        st.caption(f"Signed in as **{signed_in.identity.name}** ({signed_in.identity.role})")
        if st.button("Sign out", key="sign_out"):
            session.sign_out()
            if signed_in.via == session.VIA_OIDC:
                st.logout()  # also end Streamlit's login, or the next visit signs in again
            st.rerun()

st.navigation(pages).run()
