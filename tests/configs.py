"""Sample configs for the tests of `exporter.config` and `check-config`, and how they are
written and loaded."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from exporter.config import ConfigError, Settings, load_settings

SECRET = "cog_TopSecretServiceKey0123456789"
ENTERPRISE_SECRET = "apk_user_TopSecretEnterpriseKey987"
ORG_SECRET = "cog_TopSecretOrgKey555"

MINIMAL = f"""
devin:
  service_user_key: {SECRET}
organizations:
  - id: org-a
"""


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> Settings:
    return load_settings(write(tmp_path, text))


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return str(caught.value)
