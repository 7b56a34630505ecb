"""Files replaced whole: the old one or the new one, never half, and no leftovers."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.files import replacing, write_atomically


def test_a_file_written_whole_replaces_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("old")

    write_atomically(path, b"new")

    assert "new" == path.read_text()
    assert ["state.json"] == [p.name for p in tmp_path.iterdir()]


def test_an_error_while_writing_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "out.om"
    path.write_text("old\n")

    def interrupted() -> None:
        with replacing(path) as out:
            out.write("half of the new")
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        interrupted()

    assert "old\n" == path.read_text()
    assert ["out.om"] == [p.name for p in tmp_path.iterdir()]


def test_text_is_written_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    with replacing(path) as out:
        out.write("é\n")
    assert "é\n".encode() == path.read_bytes()
