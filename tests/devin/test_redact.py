"""Redaction of keys, whole or in part."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from exporter.devin.redact import MARK, Redactor, redact

KEY = "cog_4fJx9QmZpL2vRt8sKw1yNb"


def test_a_whole_key_is_redacted() -> None:
    assert f"bearer {MARK} refused" == redact(f"bearer {KEY} refused", [KEY])


def test_an_eight_character_fragment_is_redacted_and_seven_are_kept() -> None:
    assert f"x{MARK}y" == redact(f"x{KEY[5:13]}y", [KEY])
    assert f"x{KEY[5:12]}y" == redact(f"x{KEY[5:12]}y", [KEY])


def test_two_fragments_of_two_keys_are_both_redacted() -> None:
    other = "apk_user_QQQQWWWWEEEERRRR"
    text = f"a {KEY[:10]} b {other[-12:]} c"
    assert f"a {MARK} b {MARK} c" == redact(text, [KEY, other])


def test_text_without_a_fragment_is_returned_as_is() -> None:
    text = "sessions_created_by_origin.slack: Input should be a valid integer"
    assert text is Redactor([KEY])(text)


@given(st.text(max_size=40), st.integers(0, len(KEY) - 8), st.integers(8, len(KEY)))
def test_no_fragment_survives_whatever_surrounds_it(prefix: str, start: int, size: int) -> None:
    fragment = KEY[start : start + size]
    redacted = redact(prefix + fragment + prefix, [KEY])
    assert not any(KEY[i : i + 8] in redacted for i in range(len(KEY) - 7))
