"""The check-config command: 0 and an explanation for a valid config, 2 naming key and file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from configs import MINIMAL, SECRET, write

from exporter import cli
from exporter.config import CONFIG_ENV


@pytest.fixture(autouse=True)
def _no_exporter_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep DEVIN_EXPORTER_* variables of the developer's shell out of these tests."""
    for name in list(os.environ):
        if name.startswith("DEVIN_EXPORTER_"):
            monkeypatch.delenv(name)


def test_check_config_of_the_shipped_example_fails_only_on_its_missing_key_files(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The example validates once its three key files exist; all three are named at once."""
    if Path("/etc/devin-exporter").exists():
        pytest.skip("this machine has /etc/devin-exporter: the key files may exist")
    example = Path(__file__).resolve().parent.parent / "config.example.yaml"

    status = cli.main(["check-config", "--config", str(example)])

    keys = "/etc/devin-exporter"
    no_file = "No such file or directory"
    expected = [
        f"devin-exporter: invalid configuration in {example} "
        "(or its DEVIN_EXPORTER_* environment overrides):",
        f"  devin.service_user_key_file: cannot read {keys}/service-user.key: {no_file}",
        f"  devin.enterprise_key_file: cannot read {keys}/enterprise.key: {no_file}",
        f"  organizations[1].service_user_key_file: cannot read {keys}/payments.key: {no_file}",
    ]
    assert (2, expected) == (status, capsys.readouterr().err.splitlines())


def test_check_config_returns_0_for_a_valid_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, MINIMAL)

    status = cli.main(["check-config", "--config", str(path)])

    out, err = capsys.readouterr()
    assert status == 0
    assert out.startswith(f"{path}: configuration is valid\n  billing cycle: unknown")
    assert "  ACU limits: unknown" in out
    assert err == ""


def test_check_config_returns_2_and_names_key_and_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, MINIMAL + "log:\n  format: xml\n")

    status = cli.main(["check-config", "--config", str(path)])

    out, err = capsys.readouterr()
    assert status == cli.EXIT_CONFIG == 2
    assert out == ""
    assert str(path) in err
    assert "log.format" in err
    assert SECRET not in err


def test_check_config_reads_the_file_named_by_the_env_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "organizations: []\n")
    monkeypatch.setenv(CONFIG_ENV, str(path))

    status = cli.main(["check-config"])

    assert status == 2
    assert str(path) in capsys.readouterr().err


@pytest.mark.parametrize(
    ("devin", "extra", "expected"),
    [
        (
            "{service_user_key: cog_x, enterprise_service_user_key: cog_e}",
            "",
            [
                "billing cycle: Devin's, from GET /v3/enterprise/consumption/cycles",
                "ACU limits: from /v3/enterprise/consumption/acu-limits/devin, "
                "/v3/enterprise/organizations",
            ],
        ),
        (
            "{service_user_key: cog_x, enterprise_key: apk_user_y}",
            "billing: {cycle_start_day: 23}\n",
            [
                "billing cycle: Devin's, from GET /v2/enterprise/consumption/cycles "
                "(devin.enterprise_key), else day 23 (billing.cycle_start_day)",
                "ACU limits: from /v2/enterprise/organizations",
            ],
        ),
        (
            "{service_user_key: cog_x}",
            "billing: {cycle_start_day: 23, acu_price: 2.5, currency: EUR}\n",
            [
                "billing cycle: from day 23 of each month at 08:00 UTC",
                "ACU limits: unknown, so none are exported",
                "spend: 2.5 EUR per ACU (billing.acu_price)",
            ],
        ),
    ],
    ids=["v3", "v2", "cycle_start_day"],
)
def test_check_config_explains_the_cycle_source_and_the_limits(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    devin: str,
    extra: str,
    expected: list[str],
) -> None:
    path = write(tmp_path, f"devin: {devin}\norganizations: [{{id: org-a}}]\n{extra}")

    assert 0 == cli.main(["check-config", "--config", str(path)])

    out = capsys.readouterr().out
    for line in expected:
        assert f"\n  {line}" in out


def test_hashed_user_labels_without_a_readable_key_file_exit_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    missing = tmp_path / "no-such-key"
    for attribution, named in (
        ("{user_label: hashed}", "attribution: user_label hashed needs hash_key_file"),
        (
            f"{{user_label: hashed, hash_key_file: {missing}}}",
            f"attribution.hash_key_file: cannot read {missing}",
        ),
    ):
        config.write_text(
            f"devin: {{service_user_key: cog_x}}\norganizations: [{{id: org-a}}]\n"
            f"attribution: {attribution}\n"
        )
        assert 2 == cli.main(["check-config", "--config", str(config)])
        err = capsys.readouterr().err
        assert str(config) in err
        assert named in err
