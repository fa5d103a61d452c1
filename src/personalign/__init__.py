"""personalign: persona-instruction alignment benchmark for 12 Indian languages and English."""

__version__ = "0.1.0"
