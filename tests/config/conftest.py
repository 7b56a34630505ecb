"""The config tests run without the DEVIN_EXPORTER_* variables of the developer's shell."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _no_exporter_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep DEVIN_EXPORTER_* variables of the developer's shell out of these tests."""
    for name in list(os.environ):
        if name.startswith("DEVIN_EXPORTER_"):
            monkeypatch.delenv(name)
