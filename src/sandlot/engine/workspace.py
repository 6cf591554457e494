"""Host side of workspaces: where a sandbox's files live, and safe access to them.

Every sandbox gets a workspace directory on the host, ``<state_dir>/ws/<name>``,
which it sees as ``/workspace``. As root it is a size-capped tmpfs owned by the
sandbox's uid; it lives on the host, not in the sandbox, so a session's files
outlive a killed interpreter. Being RAM-backed, it does not survive a server
restart (neither do sessions: their interpreters are gone too).

The host reads and writes files that hostile code controls. Paths are relative,
resolved one component at a time with ``O_NOFOLLOW`` under a directory fd, so
``..``, absolute paths and symlinks planted by the sandbox are refused and
never followed; only regular files are read, and never past a size cap.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from dataclasses import dataclass

from sandlot_runtime import _libc
from sandlot_runtime.snapshot import DIRECTORY as STATE_DIRECTORY

from .._errors import InvalidRequestError, NotFoundError, TooLargeError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: int
    modified_at: float


class Workspace:
    """One sandbox's (or session's) workspace directory."""

    def __init__(self, path: str, owner_uid: int) -> None:
        self.path = path
        self.owner_uid = owner_uid
        # Files the host writes are given to the sandbox's uid; without root, the sandbox runs
        # as the server's own uid and the files are its already (chown would fail: EPERM).
        self._give_away = owner_uid != os.geteuid()

    def write(self, relpath: str, data: bytes) -> None:
        parts = split_path(relpath)
        parent = self._open_parent(parts, create=True)
        try:
            try:
                fd = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                             0o644, dir_fd=parent)
            except OSError as exc:
                raise _path_error(relpath, exc) from None
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise InvalidRequestError(f"{relpath!r} is not a regular file")
                if self._give_away:
                    os.fchown(fd, self.owner_uid, self.owner_uid)
                view = memoryview(data)
                while view:
                    try:
                        written = os.write(fd, view)
                    except OSError as exc:
                        raise TooLargeError(f"the workspace has no room for {relpath!r}: {exc.strerror}") from None
                    view = view[written:]
            finally:
                os.close(fd)
        finally:
            os.close(parent)

    def read(self, relpath: str, max_bytes: int) -> bytes:
        parts = split_path(relpath)
        parent = self._open_parent(parts, create=False)
        try:
            try:
                fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=parent)
            except OSError as exc:
                raise _path_error(relpath, exc) from None
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    raise InvalidRequestError(f"{relpath!r} is not a regular file")
                if info.st_size > max_bytes:
                    raise TooLargeError(f"{relpath!r} is {info.st_size} bytes; the download limit is {max_bytes}")
                chunks = []
                remaining = max_bytes + 1
                while remaining > 0:
                    chunk = os.read(fd, min(remaining, 1 << 20))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    remaining -= len(chunk)
                data = b"".join(chunks)
                if len(data) > max_bytes:
                    raise TooLargeError(f"{relpath!r} grew past the download limit of {max_bytes} bytes")
                return data
            finally:
                os.close(fd)
        finally:
            os.close(parent)

    def delete(self, relpath: str) -> None:
        parts = split_path(relpath)
        parent = self._open_parent(parts, create=False)
        try:
            os.unlink(parts[-1], dir_fd=parent)
        except IsADirectoryError:
            raise InvalidRequestError(f"{relpath!r} is a directory") from None
        except OSError as exc:
            raise _path_error(relpath, exc) from None
        finally:
            os.close(parent)

    def list_files(self, max_entries: int = 10_000) -> list[FileInfo]:
        """Regular files, recursively, without following any symlink; not the session's saved state
        (``.sandlot/``, which the interpreter keeps there)."""
        found: list[FileInfo] = []
        root = os.open(self.path, _DIR_FLAGS)
        try:
            for dirpath, dirs, files, dirfd in os.fwalk(".", dir_fd=root, follow_symlinks=False):
                if dirpath == "." and STATE_DIRECTORY in dirs:
                    dirs.remove(STATE_DIRECTORY)
                for name in files:
                    with contextlib.suppress(OSError):
                        info = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
                        if stat.S_ISREG(info.st_mode):
                            found.append(FileInfo(os.path.normpath(os.path.join(dirpath, name)), info.st_size, info.st_mtime))
                if len(found) >= max_entries:
                    break
        finally:
            os.close(root)
        return sorted(found, key=lambda f: f.path)

    def used_bytes(self) -> int:
        """Bytes the workspace's files take (the whole filesystem when it is a tmpfs of its own)."""
        try:
            stats = os.statvfs(self.path)
            if os.stat(self.path).st_dev != os.stat(os.path.dirname(self.path)).st_dev:
                return (stats.f_blocks - stats.f_bfree) * stats.f_frsize
        except OSError:
            return 0
        return sum(f.size for f in self.list_files())

    def _open_parent(self, parts: list[str], *, create: bool) -> int:
        fd = os.open(self.path, _DIR_FLAGS)
        try:
            for name in parts[:-1]:
                try:
                    next_fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise NotFoundError(f"no such file: {'/'.join(parts)!r}") from None
                    os.mkdir(name, 0o755, dir_fd=fd)
                    if self._give_away:
                        os.chown(name, self.owner_uid, self.owner_uid, dir_fd=fd, follow_symlinks=False)
                    next_fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    raise _path_error("/".join(parts), exc) from None
                os.close(fd)
                fd = next_fd
            return fd
        except BaseException:
            os.close(fd)
            raise


class WorkspaceManager:
    """Creates and removes workspaces under ``<state_dir>/ws``."""

    def __init__(self, base_dir: str, *, use_tmpfs: bool) -> None:
        self.base_dir = base_dir
        self.use_tmpfs = use_tmpfs
        os.makedirs(base_dir, mode=0o711, exist_ok=True)

    def create(self, name: str, *, owner_uid: int, size_bytes: int) -> Workspace:
        path = os.path.join(self.base_dir, name)
        os.mkdir(path, 0o700)
        if self.use_tmpfs:
            _libc.mount("tmpfs", path, "tmpfs", _libc.MS_NOSUID | _libc.MS_NODEV,
                        f"size={size_bytes},mode=0700,uid={owner_uid},gid={owner_uid}")
        elif owner_uid != os.geteuid():
            os.chown(path, owner_uid, owner_uid)
        return Workspace(path, owner_uid)

    def resize(self, workspace: Workspace, size_bytes: int) -> None:
        """Change a workspace's size cap (a tmpfs remount; a no-op without tmpfs)."""
        if self.use_tmpfs:
            _libc.mount(None, workspace.path, None, _libc.MS_REMOUNT | _libc.MS_NOSUID | _libc.MS_NODEV,
                        f"size={size_bytes}")

    def remove(self, workspace: Workspace) -> None:
        remove_tree(workspace.path, self.use_tmpfs)

    def remove_all(self) -> None:
        for entry in _listdir(self.base_dir):
            remove_tree(os.path.join(self.base_dir, entry), self.use_tmpfs)
        with contextlib.suppress(OSError):
            os.rmdir(self.base_dir)


def remove_tree(path: str, is_mount: bool) -> None:
    if is_mount:
        with contextlib.suppress(OSError):
            _libc.umount2(path, _libc.MNT_DETACH)
    shutil.rmtree(path, ignore_errors=True)


def split_path(relpath: str) -> list[str]:
    """Check a workspace-relative path and split it; refuses anything that could leave."""
    if not isinstance(relpath, str) or not relpath or "\x00" in relpath:
        raise InvalidRequestError("a file path must be a non-empty string")
    if relpath.startswith("/"):
        raise InvalidRequestError(f"{relpath!r}: absolute paths are not allowed; paths are relative to the workspace")
    parts = [part for part in relpath.split("/") if part not in ("", ".")]
    if not parts:
        raise InvalidRequestError(f"{relpath!r} names no file")
    if ".." in parts:
        raise InvalidRequestError(f"{relpath!r}: '..' is not allowed in workspace paths")
    return parts


def _path_error(relpath: str, exc: OSError) -> Exception:
    if isinstance(exc, FileNotFoundError):
        return NotFoundError(f"no such file: {relpath!r}")
    if exc.errno in (40, 20):  # ELOOP, ENOTDIR: a symlink where O_NOFOLLOW forbids one
        return InvalidRequestError(f"{relpath!r}: symlinks are not followed in the workspace")
    return InvalidRequestError(f"{relpath!r}: {exc.strerror}")


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []
