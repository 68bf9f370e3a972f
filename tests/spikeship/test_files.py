"""Atomic output files: complete or absent, never half-written."""

import os

import pytest

from spikeship.errors import SpikeshipError
from spikeship.files import atomic_output, write_json, write_text


def test_a_written_file_is_complete_with_the_default_mode(tmp_path):
    path = write_text(tmp_path / "a.txt", "hello\n")
    assert path.read_text() == "hello\n"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_the_temporary_name_keeps_the_suffix_and_the_folder(tmp_path):
    with atomic_output(tmp_path / "plot.png") as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".png" and tmp.name != "plot.png"
        tmp.write_bytes(b"x")
    assert (tmp_path / "plot.png").read_bytes() == b"x"


def test_an_error_while_writing_leaves_nothing_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "r.json"
    write_json(target, {"old": 1})
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == '{\n "old": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_a_missing_folder_is_one_line_user_error(tmp_path):
    with pytest.raises(SpikeshipError, match=r"^output folder does not exist: .*nowhere$"):
        write_text(tmp_path / "nowhere" / "a.txt", "x")


def test_an_os_error_becomes_one_line_user_error(tmp_path):
    target = tmp_path / "d"
    target.mkdir()
    (target / "keep").write_text("x")  # renaming a file over a non-empty folder fails
    with pytest.raises(SpikeshipError, match=r"^cannot write .*d: "):
        write_text(target, "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
