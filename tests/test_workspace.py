"""Host-side file access to workspaces that hostile code controls."""

from __future__ import annotations

import os
import pathlib

import pytest

from sandlot import InvalidRequestError, NotFoundError, TooLargeError
from sandlot.engine.workspace import Workspace


@pytest.fixture
def ws(tmp_path: pathlib.Path) -> Workspace:
    root = tmp_path / "ws"
    root.mkdir()
    return Workspace(str(root), os.getuid())


@pytest.mark.parametrize("path", ["../escape", "a/../../escape", "/etc/passwd", "", "a/\0b", ".."])
def test_paths_that_leave_are_refused(ws: Workspace, path: str) -> None:
    with pytest.raises(InvalidRequestError):
        ws.write(path, b"x")


def test_symlinks_are_never_followed(ws: Workspace, tmp_path: pathlib.Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("host secret")
    os.symlink(secret, os.path.join(ws.path, "link"))
    os.symlink(tmp_path, os.path.join(ws.path, "dirlink"))
    with pytest.raises(InvalidRequestError):
        ws.read("link", 1024)
    with pytest.raises(InvalidRequestError):
        ws.read("dirlink/secret", 1024)
    with pytest.raises(InvalidRequestError):
        ws.write("link", b"overwrite")
    assert secret.read_text() == "host secret"
    assert [f.path for f in ws.list_files()] == []


def test_fifo_is_not_read(ws: Workspace) -> None:
    os.mkfifo(os.path.join(ws.path, "pipe"))
    with pytest.raises(InvalidRequestError):
        ws.read("pipe", 1024)


def test_write_read_list_delete(ws: Workspace) -> None:
    ws.write("a/b/c.txt", b"hello")
    assert ws.read("a/b/c.txt", 1024) == b"hello"
    assert [(f.path, f.size) for f in ws.list_files()] == [("a/b/c.txt", 5)]
    with pytest.raises(TooLargeError):
        ws.read("a/b/c.txt", 4)
    ws.delete("a/b/c.txt")
    with pytest.raises(NotFoundError):
        ws.read("a/b/c.txt", 1024)
