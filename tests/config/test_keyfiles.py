"""Keys read from files: trimmed, one line of visible ASCII, bounded; errors name the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from configs import ENTERPRISE_SECRET, ORG_SECRET, SECRET, config_error, load, write


def test_key_files_are_read_and_stripped(tmp_path: Path) -> None:
    (tmp_path / "service.key").write_text(f"  {SECRET}\n\n", encoding="utf-8")
    (tmp_path / "enterprise.key").write_text(f"{ENTERPRISE_SECRET}\n", encoding="utf-8")
    (tmp_path / "org.key").write_text(f"\t{ORG_SECRET}\r\n", encoding="utf-8")
    text = f"""
    devin:
      service_user_key_file: {tmp_path / "service.key"}
      enterprise_key_file: {tmp_path / "enterprise.key"}
    organizations:
      - id: org-a
        service_user_key_file: {tmp_path / "org.key"}
      - id: org-b
    """

    settings = load(tmp_path, text)

    org_a, org_b = settings.organizations
    assert settings.devin.service_user_key is not None
    assert settings.devin.enterprise_key is not None
    assert settings.devin.service_user_key.get_secret_value() == SECRET
    assert settings.devin.enterprise_key.get_secret_value() == ENTERPRISE_SECRET
    assert settings.key_for(org_a).get_secret_value() == ORG_SECRET
    assert settings.key_for(org_b).get_secret_value() == SECRET


def test_every_key_file_of_a_section_is_reported_at_once(tmp_path: Path) -> None:
    files = [tmp_path / f"{name}.key" for name in ("a", "b", "c")]
    path = write(
        tmp_path,
        f"""
        devin:
          service_user_key_file: {files[0]}
          enterprise_key_file: {files[1]}
          enterprise_service_user_key_file: {files[2]}
        """,
    )

    message = config_error(path)

    keys = ("service_user_key_file", "enterprise_key_file", "enterprise_service_user_key_file")
    assert [
        f"  devin.{key}: cannot read {file}: No such file or directory"
        for key, file in zip(keys, files, strict=True)
    ] == message.splitlines()[1:]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\xef\xbb\xbf" + SECRET.encode() + b"\n", "starts with a byte order mark (BOM)"),
        (SECRET.encode() + b"\n" + SECRET.encode() + b"\n", "holds more than one line"),
        (SECRET.encode() + "é".encode() + b"\n", "may hold only visible ASCII characters"),
        (SECRET.encode()[:8] + b" " + SECRET.encode()[8:], "may hold only visible ASCII"),
        (b"x" * 5000, "is longer than 4096 bytes: not a key"),
    ],
    ids=["bom", "two-lines", "non-ascii", "inner-space", "too-long"],
)
def test_a_key_file_that_cannot_be_a_header_value_is_refused_naming_the_file(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    key_file = tmp_path / "service.key"
    key_file.write_bytes(content)
    path = write(
        tmp_path, f"devin:\n  service_user_key_file: {key_file}\norganizations: [{{id: org-a}}]\n"
    )

    message = config_error(path)

    assert f"devin.service_user_key_file: {key_file} {reason}" in message
    assert SECRET not in message


def test_a_key_file_that_never_ends_fails_at_once(tmp_path: Path) -> None:
    """`/dev/zero` is read for 4 KiB, not until memory runs out."""
    path = write(
        tmp_path, "devin:\n  service_user_key_file: /dev/zero\norganizations: [{id: org-a}]\n"
    )

    assert "/dev/zero is longer than 4096 bytes" in config_error(path)
