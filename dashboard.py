"""KetaDash entry point: the pages and their stable URL paths, nothing else.

Run with ``streamlit run dashboard.py``. Home is a page of its own because the
default page always lives at ``/`` whatever its ``url_path`` says. The two shell
calls make the first deep link after a server start reach this navigation, and
turn a database outage on any page into a plain message.
"""

import streamlit as st

from ketadash.ui.shell import leave_legacy_multipage_mode, run_page

leave_legacy_multipage_mode()

home = st.Page("pages/home.py", title="Home", icon=":material/home:", default=True)
today = st.Page("pages/today.py", title="Today", icon=":material/event_seat:", url_path="today")
recovery = st.Page(
    "pages/recovery.py",
    title="Recovery & rides",
    icon=":material/directions_car:",
    url_path="recovery",
)
wall = st.Page("pages/wall.py", title="Wall display", icon=":material/tv:", url_path="wall")
boosters = st.Page(
    "pages/boosters.py", title="Boosters", icon=":material/event_repeat:", url_path="boosters"
)
throughput = st.Page(
    "pages/throughput.py", title="Throughput", icon=":material/monitoring:", url_path="throughput"
)

run_page(
    st.navigation(
        {
            "": [home],
            "Monitoring room": [today, recovery, wall],
            "Clinic lead": [boosters, throughput],
        }
    )
)
