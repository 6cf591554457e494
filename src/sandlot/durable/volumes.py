"""Where a session's files live: a volume on disk that outlives every process.

As root, a session's workspace is an ext4 filesystem in a sparse image file,
``<data_dir>/sessions/<id>/workspace.img``, loop-mounted at
``<data_dir>/sessions/<id>/workspace`` while something uses it. The image's size
is the hard cap (the sandbox gets ENOSPC, not more disk), the filesystem's
journal keeps it consistent through a crash, and an empty one costs about
1.4 MB of disk (a 1 MiB journal, 1 KiB blocks). Without root there are no loop
mounts: the workspace is a plain directory there, capped only by RLIMIT_FSIZE
per file (as one-shot workspaces are in that mode).

A session's interpreter is a pooled sandbox that already has a tmpfs at
``/workspace`` in its own mount namespace. ``attach`` puts the volume on top of
it: a detached copy of the host's mount (``open_tree``), moved into the
sandbox's mount namespace (``setns`` + ``move_mount``) from a short-lived thread
of our own whose filesystem context is unshared first (``setns`` into a mount
namespace refuses a thread that shares it). About 2 ms, and the sandbox never
holds a privilege to do any of it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import subprocess
import threading

from sandlot_runtime import _libc

from .._errors import ResourceExhaustedError, TooLargeError
from ..engine.workspace import Workspace

IMAGE = "workspace.img"
MOUNT_POINT = "workspace"
_SANDBOX_WORKSPACE = "/workspace"
_MKFS_ARGS = ("-q", "-F", "-b", "1024", "-J", "size=1", "-m", "0")
_SYSTEM_DIRS = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")
"""Where e2fsprogs and util-linux live, searched after PATH: a root shell's PATH may lack the sbin directories."""


def tool(name: str) -> str | None:
    """The full path of a system program (mkfs.ext4, e2fsck, mount), or None when it is not installed."""
    path = os.environ.get("PATH", "")
    return shutil.which(name, path=os.pathsep.join([p for p in (path,) if p] + list(_SYSTEM_DIRS)))


def images_available() -> bool:
    """Whether volumes can be ext4 images here: root, and e2fsprogs' mkfs.ext4 and util-linux's mount installed."""
    return os.geteuid() == 0 and tool("mkfs.ext4") is not None and tool("mount") is not None
_FIFREEZE, _FITHAW = 0xC0045877, 0xC0045878


class Volume:
    """One session's storage: a directory, with an image file inside when mounts are ours to make."""

    def __init__(self, directory: str, *, images: bool) -> None:
        self.directory = directory
        self.path = os.path.join(directory, MOUNT_POINT)
        """The workspace as the host sees it (mounted, for an image)."""
        self.image = os.path.join(directory, IMAGE) if images else None

    def __repr__(self) -> str:
        return f"<Volume {self.directory}>"

    def mounted(self) -> bool:
        return self.image is None or os.path.ismount(self.path)

    def workspace(self, owner_uid: int) -> Workspace:
        return Workspace(self.path, owner_uid)


class VolumeManager:
    """Makes, mounts, copies and removes the volumes under ``<data_dir>/sessions``."""

    def __init__(self, base_dir: str, *, images: bool) -> None:
        self.base_dir = base_dir
        self.images = images
        os.makedirs(base_dir, mode=0o700, exist_ok=True)
        self._mount_lock = threading.Lock()

    def volume(self, session_id: str) -> Volume:
        return Volume(os.path.join(self.base_dir, session_id), images=self.images)

    def create(self, session_id: str, *, size_bytes: int, owner_uid: int) -> Volume:
        """A new, empty volume, mounted (blocking: run it in a thread)."""
        volume = self.volume(session_id)
        os.mkdir(volume.directory, 0o700)
        try:
            os.mkdir(volume.path, 0o700)
            if volume.image is not None:
                with open(volume.image, "xb") as image:
                    image.truncate(size_bytes)
                _run(["mkfs.ext4", *_MKFS_ARGS, "-E", f"root_owner={owner_uid}:{owner_uid},nodiscard,lazy_itable_init=1",
                      volume.image])
                self.mount(volume)
                with contextlib.suppress(OSError):
                    os.rmdir(os.path.join(volume.path, "lost+found"))  # e2fsck makes it again if it needs one
            elif owner_uid != os.geteuid():
                os.chown(volume.path, owner_uid, owner_uid)
        except BaseException:
            self.remove(volume)
            raise
        return volume

    def mount(self, volume: Volume) -> None:
        """Mount an image volume on the host (a no-op when it is mounted, or is a plain directory).
        An image that a machine crash left unclean is checked (``e2fsck -p``) and mounted again."""
        if volume.image is None:
            return
        with self._mount_lock:
            if os.path.ismount(volume.path):
                return
            os.makedirs(volume.path, 0o700, exist_ok=True)
            command = ["mount", "-t", "ext4", "-o", "loop,nosuid,nodev,noatime", volume.image, volume.path]
            try:
                _run(command)
            except ResourceExhaustedError:
                raise
            except OSError:
                subprocess.run([tool("e2fsck") or "e2fsck", "-p", volume.image], capture_output=True, timeout=120,
                               check=False)
                _run(command)

    def unmount(self, volume: Volume) -> None:
        """Take an image volume off the host (its loop device goes once no sandbox holds it either)."""
        if volume.image is None:
            return
        with self._mount_lock:
            if os.path.ismount(volume.path):
                with contextlib.suppress(OSError):
                    _libc.umount2(volume.path, _libc.MNT_DETACH)

    def give_to(self, volume: Volume, uid: int) -> None:
        """Make every file of the volume owned by ``uid`` (a new interpreter may have another uid than the
        last one). Never follows a link: ``lchown``, over a walk that does not descend into them."""
        if os.geteuid() != 0:
            return
        info = os.stat(volume.path)
        if info.st_uid == uid:
            return
        root = os.open(volume.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            os.chown(root, uid, uid)
            for _dirpath, dirs, files, dirfd in os.fwalk(".", dir_fd=root, follow_symlinks=False):
                for name in dirs + files:
                    with contextlib.suppress(OSError):
                        os.chown(name, uid, uid, dir_fd=dirfd, follow_symlinks=False)
        finally:
            os.close(root)

    def attach(self, volume: Volume, sandbox_pid: int) -> None:
        """Put the mounted volume at ``/workspace`` in the mount namespace of the sandbox ``sandbox_pid``."""
        if volume.image is None:
            raise ValueError("a plain-directory volume is not attached; the sandbox is started on it")
        tree = _libc.open_tree(volume.path, _libc.OPEN_TREE_CLONE | _libc.OPEN_TREE_CLOEXEC)
        try:
            namespace = os.open(f"/proc/{sandbox_pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
            try:
                failure: list[OSError] = []

                def move() -> None:
                    try:
                        _libc.unshare(_libc.CLONE_FS)  # this thread's own root and cwd: setns needs them unshared
                        _libc.setns(namespace, _libc.CLONE_NEWNS)
                        _libc.move_mount_fd(tree, _SANDBOX_WORKSPACE)
                    except OSError as exc:
                        failure.append(exc)

                # A thread of its own: it leaves our mount namespace and is never used again.
                mover = threading.Thread(target=move, name="sandlot-attach")
                mover.start()
                mover.join()
                if failure:
                    raise failure[0]
            finally:
                os.close(namespace)
        finally:
            os.close(tree)

    def copy(self, source: Volume, target_id: str, *, size_bytes: int, owner_uid: int) -> Volume:
        """A new volume holding a copy of ``source``'s files (fork). An image is copied whole, holes kept,
        with the source frozen meanwhile (a consistent filesystem even if its sandbox writes); its size
        is the source's, which the new session is held to. A directory is copied file by file, up to
        ``size_bytes``."""
        target = self.volume(target_id)
        os.mkdir(target.directory, 0o700)
        try:
            os.mkdir(target.path, 0o700)
            if source.image is not None and target.image is not None:
                with _frozen(source):
                    _copy_sparse(source.image, target.image)  # not mounted: a fork is paused until used
            else:
                _copy_tree(source.path, target.path, size_bytes, owner_uid)
        except BaseException:
            self.remove(target)
            raise
        return target

    def remove(self, volume: Volume) -> None:
        self.unmount(volume)
        shutil.rmtree(volume.directory, ignore_errors=True)

    def unmount_all(self) -> None:
        """Take every volume of ours off the host: at start-up (a crashed server's) and at close."""
        prefix = self.base_dir.rstrip("/") + "/"
        with open("/proc/self/mountinfo") as mountinfo:
            points = [line.split()[4] for line in mountinfo]
        for point in reversed(points):
            if point.startswith(prefix):
                with contextlib.suppress(OSError):
                    _libc.umount2(point, _libc.MNT_DETACH)


def _run(command: list[str]) -> None:
    command = [tool(command[0]) or command[0], *command[1:]]
    try:
        done = subprocess.run(command, capture_output=True, timeout=60, check=False)
    except subprocess.TimeoutExpired as exc:
        raise OSError(errno.EIO, f"{command[0]}: {exc}") from None
    # An OSError (no process to fork: EAGAIN) goes up as it is: its errno says what ran out.
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip()[:300]
        if "loop device" in said:  # util-linux: "failed to setup loop device", "could not find any free loop device"
            raise ResourceExhaustedError(f"no loop device is free for a session's workspace: {said}")
        if "No space left" in said:
            raise OSError(errno.ENOSPC, f"{command[0]}: {said}")
        raise OSError(errno.EIO, f"{command[0]} failed: {said}")


@contextlib.contextmanager
def _frozen(volume: Volume):  # type: ignore[no-untyped-def]
    """Hold writes to a mounted image volume while it is copied (FIFREEZE); a no-op when unmounted."""
    if not os.path.ismount(volume.path):
        yield
        return
    fd = os.open(volume.path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        import fcntl

        fcntl.ioctl(fd, _FIFREEZE, 0)
        try:
            yield
        finally:
            fcntl.ioctl(fd, _FITHAW, 0)
    finally:
        os.close(fd)


def _copy_sparse(source: str, target: str) -> None:
    """Copy a file's data regions only (SEEK_DATA/SEEK_HOLE): an image's holes stay holes."""
    with open(source, "rb") as src, open(target, "xb") as dst:
        size = os.fstat(src.fileno()).st_size
        dst.truncate(size)
        offset = 0
        while offset < size:
            try:
                start = os.lseek(src.fileno(), offset, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # nothing but a hole left
                    break
                raise
            end = os.lseek(src.fileno(), start, os.SEEK_HOLE)
            while start < end:
                copied = os.copy_file_range(src.fileno(), dst.fileno(), end - start, start, start)
                if copied == 0:
                    break
                start += copied
            offset = end


def _copy_tree(source: str, target: str, size_bytes: int, owner_uid: int) -> None:
    """Copy regular files and directories (never links), counting bytes against ``size_bytes``."""
    total = 0
    root = os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for dirpath, dirs, files, dirfd in os.fwalk(".", dir_fd=root, follow_symlinks=False):
            for name in dirs:
                with contextlib.suppress(OSError):
                    if stat.S_ISDIR(os.stat(name, dir_fd=dirfd, follow_symlinks=False).st_mode):
                        os.makedirs(os.path.join(target, dirpath, name), 0o755, exist_ok=True)
            for name in files:
                try:
                    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dirfd)
                except OSError:
                    continue  # a link, a fifo: not copied
                with os.fdopen(fd, "rb") as src:
                    info = os.fstat(src.fileno())
                    if not stat.S_ISREG(info.st_mode):
                        continue
                    total += info.st_size
                    if total > size_bytes:
                        raise TooLargeError(f"the copy is over the workspace limit of {size_bytes} bytes")
                    destination = os.path.join(target, dirpath, name)
                    with open(destination, "xb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    if owner_uid != os.geteuid():
                        os.chown(destination, owner_uid, owner_uid)
    finally:
        os.close(root)
