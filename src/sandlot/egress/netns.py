"""The proxy's listening socket, opened *inside* a sandbox's network namespace.

The sandbox's namespace has only a loopback device and no route out. Rather than run a relay in there,
the host (root in the initial user namespace, so with CAP_SYS_ADMIN and CAP_NET_ADMIN over that namespace)
enters it from a short-lived thread of its own (``setns`` is per thread), brings ``lo`` up, binds
127.0.0.1:PORT and listens. A socket belongs to the namespace it was made in for good: the thread leaves,
and the host's event loop serves the socket, which the sandbox reaches at 127.0.0.1:PORT.

The namespace is entered through the sandbox's pidfd (race-free), and only after checking it is not the
host's own (a sandbox that has not unshared yet would otherwise get a listener on the host's loopback).
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import threading

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
_libc = ctypes.CDLL(None, use_errno=True)


BACKLOG = 128
"""Connections the kernel queues for the proxy before it accepts them (asyncio accepts up to this many at a time)."""

def _setns(fd: int, nstype: int) -> None:
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _net_ns_inode(path: str) -> int:
    return os.stat(path).st_ino


def _bring_loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, request))[1]
        if not flags & IFF_UP:
            fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def listen_in(pidfd: int, port: int, backlog: int = BACKLOG) -> socket.socket:
    """A listening TCP socket on 127.0.0.1:``port`` in the network namespace of the process ``pidfd`` names."""
    host_ns = _net_ns_inode("/proc/self/ns/net")
    result: dict[str, object] = {}

    def enter_and_listen() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(pidfd, CLONE_NEWNET)
            try:
                if _net_ns_inode("/proc/thread-self/ns/net") == host_ns:
                    raise OSError("the sandbox shares the host's network namespace")
                _bring_loopback_up()
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    listener.bind(("127.0.0.1", port))
                    listener.listen(backlog)
                    listener.setblocking(False)
                except BaseException:
                    listener.close()
                    raise
                result["socket"] = listener
            finally:
                _setns(own, CLONE_NEWNET)  # this thread ends anyway; back home all the same
        except BaseException as exc:
            result["error"] = exc
        finally:
            os.close(own)

    # A thread of its own, never a pooled worker: a worker left in another namespace would serve others there.
    thread = threading.Thread(target=enter_and_listen, name="sandlot-netns", daemon=True)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    listener = result["socket"]
    assert isinstance(listener, socket.socket)
    return listener
