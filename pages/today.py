"""Today's board (being built by the lifecycle/board work)."""

import streamlit as st

st.title("Today")
