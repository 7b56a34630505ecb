"""Keys read from files: one line of visible ASCII, bounded, errors that never show it."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

# A key file longer than this is no key (and `/dev/zero` fails at once, not after memory).
MAX_KEY_FILE_BYTES = 4096
_BOM = b"\xef\xbb\xbf"


def read_key_file(path: Path) -> SecretStr:
    """A key from a file: one line of visible ASCII; whitespace around it is dropped.

    No rule beyond these (length, alphabet, prefix), so that any key Devin may issue
    works; the errors name the file and never the content.
    """
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror}") from None
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise ValueError(f"{path} is longer than {MAX_KEY_FILE_BYTES} bytes: not a key")
    if raw.startswith(_BOM):
        raise ValueError(f"{path} starts with a byte order mark (BOM): save it as plain ASCII")
    text = raw.strip(b" \t\r\n")
    if not text:
        raise ValueError(f"{path} is empty")
    if b"\n" in text or b"\r" in text:
        raise ValueError(f"{path} holds more than one line; a key is one line")
    if not visible_ascii(text):
        raise ValueError(
            f"{path} may hold only visible ASCII characters (no spaces, tabs or non-ASCII letters)"
        )
    return SecretStr(text.decode("ascii"))


def visible_ascii(text: bytes) -> bool:
    """Whether every byte is visible ASCII: what an HTTP header value can carry as is."""
    return all(0x21 <= byte <= 0x7E for byte in text)
