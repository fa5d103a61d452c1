"""personalign.tasks."""
