"""KetaDash: the staff dashboard of a ketamine clinic's monitoring room."""

__version__ = "0.1.0"
