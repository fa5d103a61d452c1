"""personalign.build."""
