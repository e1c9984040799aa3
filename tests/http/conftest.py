"""Fixtures shared by the HTTP tests."""

import pytest

from tests.support.factories import make_user


@pytest.fixture
def organizer(auth):
    """An organizer, signed in on ``client``."""
    olive = make_user(name="Olive")
    auth.login(olive)
    return olive


@pytest.fixture
def ann(auth):
    """A buyer, Ann, signed in on ``client``."""
    user = make_user(name="Ann")
    auth.login(user)
    return user
