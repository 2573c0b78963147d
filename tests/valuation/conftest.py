"""The command-line fixture of the end-to-end tests."""

from tests.e2e.conftest import cli

__all__ = ["cli"]
