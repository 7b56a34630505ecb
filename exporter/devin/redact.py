"""Redaction of keys, whole or in part: what an upstream echoes must not leak a fragment.

Any run of 8 or more characters that also occurs in a configured key is replaced, so a
hostile or careless answer that quotes part of a key gets it into no log line, error,
label value or status page.
"""

from __future__ import annotations

from collections.abc import Iterable

FRAGMENT = 8  # the shortest run of a key that counts as a fragment of it
MARK = "<redacted>"


class Redactor:
    """Replaces every fragment (FRAGMENT characters or more) of the given secrets."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._grams = frozenset(
            secret[i : i + FRAGMENT]
            for secret in secrets
            for i in range(len(secret) - FRAGMENT + 1)
        )

    def __call__(self, text: str) -> str:
        if not self._grams or len(text) < FRAGMENT or not self.leaks(text):
            return text
        # Every fragment of a secret is a chain of overlapping grams of it: mark where
        # each gram of the text is one, and replace every maximal marked run.
        covered = [False] * len(text)
        for i in range(len(text) - FRAGMENT + 1):
            if text[i : i + FRAGMENT] in self._grams:
                covered[i : i + FRAGMENT] = [True] * FRAGMENT
        parts: list[str] = []
        i = 0
        while i < len(text):
            if covered[i]:
                while i < len(text) and covered[i]:
                    i += 1
                parts.append(MARK)
            else:
                j = i
                while j < len(text) and not covered[j]:
                    j += 1
                parts.append(text[i:j])
                i = j
        return "".join(parts)

    def leaks(self, text: str) -> bool:
        """Whether `text` holds a fragment of a secret (a fast check: C-level searches)."""
        return any(gram in text for gram in self._grams)

    def scrub(self, data: bytes | bytearray) -> bytes | bytearray:
        """A body with every fragment redacted; the body itself when it holds none."""
        if not any(gram.encode() in data for gram in self._grams):
            return data
        text = bytes(data).decode("utf-8", errors="surrogateescape")
        return self(text).encode("utf-8", errors="surrogateescape")


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` without any fragment of `secrets`."""
    return Redactor(secrets)(text)
