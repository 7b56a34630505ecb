"""The sections: what each takes and refuses, and what it derives."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from configs import MINIMAL, load

from exporter.config import ConfigError, load_settings


def test_base_url_loses_its_trailing_slash(tmp_path: Path) -> None:
    text = MINIMAL.replace("devin:\n", "devin:\n  base_url: http://127.0.0.1:8000/\n")
    settings = load(tmp_path, text)

    assert settings.devin.base_url == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("billing", "key"),
    [
        ({"cycle_start_day": 29}, "billing.cycle_start_day"),
        ({"cycle_start_day": 0}, "billing.cycle_start_day"),
        ({"acu_price": 0}, "billing.acu_price"),
        ({"acu_price": -1.5}, "billing.acu_price"),
        ({"currency": "usd"}, "billing.currency"),
        ({"currency": "EURO"}, "billing.currency"),
    ],
)
def test_billing_settings_out_of_range_name_their_key(billing: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_settings(None, devin={"service_user_key": "cog_x"}, billing=billing)


def test_the_hash_key_is_read_trimmed_and_never_shown(tmp_path: Path) -> None:
    key_file = tmp_path / "hash.key"
    key_file.write_text("  s3cret-hash-key-0123456789\n")

    settings = load_settings(
        None,
        devin={"service_user_key": "cog_x"},
        organizations=[{"id": "org-a"}],
        attribution={"user_label": "hashed", "hash_key_file": str(key_file)},
    )

    key = settings.attribution.hash_key
    assert key is not None
    assert "s3cret-hash-key-0123456789" == key.get_secret_value()
    assert "s3cret" not in repr(settings) + str(settings.model_dump())
    assert key in settings.secrets()  # redacted from the logs like the API keys
