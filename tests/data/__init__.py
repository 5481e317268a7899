"""Damaged and unusual data files. A package, so that `tests/data/conftest.py` is imported as `data.conftest` and
does not replace `tests/conftest.py` as the module `conftest` that other test files import from."""
