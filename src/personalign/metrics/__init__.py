"""personalign.metrics."""
