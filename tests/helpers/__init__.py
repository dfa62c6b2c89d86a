"""Plain helpers the tests import by name; fixtures and hooks stay in the conftest.py files."""
