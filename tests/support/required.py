"""Servers the tests start for themselves (PostgreSQL, Redis, nginx) may be missing on a
developer's machine: the tests that need one skip there. ``make test`` installs them all and
sets ``REQUIRE_POSTGRES=1``, and there a missing one fails the run instead of hiding it."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def not_installed(what: str) -> NoReturn:
    """Skip the test for want of ``what``, or fail it under ``make test``."""
    if os.environ.get("REQUIRE_POSTGRES"):
        pytest.fail(f"{what} is required by make test but not installed")
    pytest.skip(f"{what} not installed")
