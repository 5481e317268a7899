"""Benchmarks of issue 5: scripts that print numbers (`python -m experiments.benchmarks.<name> --help`)."""
