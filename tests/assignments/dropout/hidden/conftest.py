"""A conftest of the hidden tests: its fixtures are ordinary pytest fixtures."""
import pytest


@pytest.fixture(scope="session")
def ratio():
    return 0.4
