"""The Streamlit console's entry script: page setup and navigation only."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

VIEWS = Path(__file__).resolve().parent / "views"

st.set_page_config(page_title="NaloxNet console", page_icon="💊", layout="wide")

navigation = st.navigation(
    [
        st.Page(VIEWS / "fleet_map.py", title="Fleet map", icon="🗺️", default=True),
        st.Page(VIEWS / "alerts.py", title="Alerts", icon="🚨", url_path="alerts"),
        st.Page(VIEWS / "restock.py", title="Restock", icon="🚐", url_path="restock"),
        st.Page(VIEWS / "machine.py", title="Machine detail", icon="🔎", url_path="machine"),
    ]
)
navigation.run()
