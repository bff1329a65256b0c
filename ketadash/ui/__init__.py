"""The Streamlit side of KetaDash: the only package that imports streamlit.

Pages call ``page_setup`` first, then build their screen from ``ketadash`` reads.
"""

from ketadash.ui.auth import signed_in
from ketadash.ui.shell import PageContext, page_setup, site_picker

__all__ = ["PageContext", "page_setup", "signed_in", "site_picker"]
