"""The Streamlit side of KetaDash: the only package that imports streamlit.

Pages call ``ketadash.ui.shell.page_setup`` first, then build their screen from
``ketadash`` reads. This file imports nothing, so no module here imports its own
package back (``ketadash.ui.auth`` uses ``ketadash.ui.shell``).
"""
