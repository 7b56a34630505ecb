"""The demo tests' running demo API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from exporter.demo.account import DemoAccount

from .served import Served, serve


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    """Three organisations, seed 5, that also get sessions from a `github` origin."""
    async with serve(DemoAccount.generate(3, seed=5, extra_origins=["github"])) as running:
        yield running
