"""personalign.analysis."""
