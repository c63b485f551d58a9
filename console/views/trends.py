"""Trends: naloxone dispenses by area or product over time, and a year earlier."""

from __future__ import annotations

from datetime import date

import streamlit as st

from console import charts, session, trends_view
from console.client import ApiError

MOST_LINES = 8  # lines drawn at most; the table below lists every area or product

st.title("Trends")
st.caption(
    "Successful dispenses per week (Monday to Sunday, the city's days). Counts from 1 to 4 are "
    "shown as “<5”, and a few others as “suppressed” so that they cannot be worked out from "
    "the totals."
)
api = session.api()

controls = st.columns(4)
weeks = controls[0].selectbox("Weeks", [8, 13, 26, 52], index=1, key="trends_weeks")
group = controls[1].radio("By", ["area", "product"], horizontal=True, key="trends_group")
# The backend's day, not this machine's: under its data clock (the demo) weeks ahead.
today = session.statistics_day(api)
until = controls[2].date_input("Up to", value=today, key="trends_until")
compare = controls[3].toggle("Same weeks a year earlier", value=True, key="trends_compare")

first, last = trends_view.period(int(weeks), until if isinstance(until, date) else today)
try:
    stats = api.dispense_stats(first=first, last=last, bucket="week", group=str(group))
except ApiError as exc:
    session.report(exc, "Cannot load the dispense statistics")
    st.stop()

total = "suppressed" if stats.total is None else f"{stats.total:,}"
st.metric(f"Dispenses {first} – {last}", total)
if not stats.series:
    st.info("No dispenses in these weeks.")
    st.stop()

keys = trends_view.keys_by_total(stats, MOST_LINES)
rows = trends_view.only_keys(trends_view.stats_rows(stats), keys)
st.subheader(f"By {group}" + (f" (the {len(keys)} busiest)" if len(stats.series) > len(keys)
                              else ""))
st.altair_chart(charts.trends_chart(rows), width="stretch", key="trends_chart")
st.dataframe(trends_view.stats_table(stats), hide_index=True, key="trends_table")

if compare:
    before_first, before_last = trends_view.a_year_earlier(first, last)
    try:
        before = api.dispense_stats(first=before_first, last=before_last, bucket="week",
                                    group=str(group))
    except ApiError as exc:
        session.report(exc, "Cannot load last year's statistics")
        st.stop()
    st.subheader("Against the same weeks a year earlier")
    if not trends_view.has_history(before):
        st.caption(f"No dispenses recorded from {before_first} to {before_last}: "
                   "nothing to compare with yet.")
    else:
        st.altair_chart(charts.comparison_chart(trends_view.comparison_rows(stats, before)),
                        width="stretch", key="trends_comparison")
        st.dataframe(trends_view.change_rows(stats, before), hide_index=True,
                     key="trends_change")
