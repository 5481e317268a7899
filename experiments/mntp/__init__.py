"""The MNTP study: a bidirectional adaptation stage before label supervision (README.md here)."""
