"""personalign.report."""
