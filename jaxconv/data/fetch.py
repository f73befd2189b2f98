"""Download the LLM logs of Ashery, Aiello & Baronchelli (2025) from the authors' public repository.

The four archives (``claude_data.zip``, ``llama2_data.zip``, ``llama31_data.zip``, ``llama3_data.zip``) are taken
from the pinned commit :data:`COMMIT` of the repository Ariel-Flint-Ashery/AI-norms (MIT licence), checked against
their SHA-256 (:data:`REGISTRY`) and kept in a cache folder, so a second :func:`fetch` downloads nothing.

Where the logs are looked for, in order (:func:`data_dir`):

1. ``$JAXCONV_AI_NORMS``, if set (also where :func:`fetch` writes by default);
2. the per-user cache folder :func:`cache_dir` (``~/.cache/jaxconv/ai-norms`` on Linux).

Commands that need logs and are given no path use :func:`logs_path`, which raises a one-line
``FileNotFoundError`` telling to run ``jaxconv data fetch`` when none are found.
"""

import hashlib
import os
from pathlib import Path

COMMIT = "e57aeef151a46108fd1521c66e345e557e57dbf6"
"""The commit of Ariel-Flint-Ashery/AI-norms the files are taken from."""

BASE_URL = f"https://raw.githubusercontent.com/Ariel-Flint-Ashery/AI-norms/{COMMIT}/"
"""The repository's files at :data:`COMMIT`; file ``NAME`` is downloaded from ``BASE_URL + "data/" + NAME``."""

ENVIRONMENT_VARIABLE = "JAXCONV_AI_NORMS"
"""A folder holding the logs (and where :func:`fetch` writes by default), when set."""

REGISTRY: dict[str, tuple[str, int | None]] = {
    "claude_data.zip": ("dd1f7132f24b7c16c0a37abd123122dc14a8b6800cf66eec42d0906e3d90ae36", 579_385),
    "llama2_data.zip": ("0e0e4263ea9505f992f15e3264ebdb6a54869404e9235f70c209836cab6c91c5", 626_229),
    "llama31_data.zip": ("139a35d212e4e8069a4f697f17dd91eeb1ce389326fcd443af3b4207e8f2f648", 1_736_630),
    "llama3_data.zip": ("b7cfc759e52bf6d1dc358664eec799d315ca96d4020a93847048aa45fd900616", 2_292_617),
}
"""File name -> (SHA-256, bytes) of each archive at :data:`COMMIT`. Tests pass their own ``registry`` (values
``(sha256, bytes)`` or a bare ``sha256``)."""


class DownloadError(OSError):
    """A download failed or its content does not match the registry (nothing is kept)."""


def cache_dir() -> Path:
    """The per-user cache folder of the logs (``pooch.os_cache("jaxconv") / "ai-norms"``)."""
    import pooch

    return Path(pooch.os_cache("jaxconv")) / "ai-norms"


def default_dir() -> Path:
    """Where :func:`fetch` writes by default: ``$JAXCONV_AI_NORMS`` if set, else :func:`cache_dir`."""
    env = os.environ.get(ENVIRONMENT_VARIABLE)
    return Path(env).expanduser() if env else cache_dir()


def data_dir(registry: dict | None = None) -> Path | None:
    """The first folder holding at least one of the logs: ``$JAXCONV_AI_NORMS``, then :func:`cache_dir`
    (``None`` if neither does)."""
    registry = REGISTRY if registry is None else registry
    env = os.environ.get(ENVIRONMENT_VARIABLE)
    candidates = ([Path(env).expanduser()] if env else []) + [cache_dir()]
    for folder in candidates:
        if folder.is_dir() and any((folder / name).is_file() for name in registry):
            return folder
    return None


def logs_path(path=None, registry: dict | None = None) -> Path:
    """``path`` if given, else the folder of fetched logs (:func:`data_dir`).

    Raises a one-line FileNotFoundError telling to run ``jaxconv data fetch`` when no logs are found."""
    if path is not None:
        return Path(path)
    found = data_dir(registry)
    if found is None:
        env = os.environ.get(ENVIRONMENT_VARIABLE)
        where = f"${ENVIRONMENT_VARIABLE} ({env}) or {cache_dir()}" if env else str(cache_dir())
        raise FileNotFoundError(
            f"no LLM logs found in {where}: run `jaxconv data fetch` (or give a path, or set ${ENVIRONMENT_VARIABLE})"
        )
    return found


def resolve_names(names=None, registry: dict | None = None) -> list[str]:
    """File names of the registry for ``names`` (all by default). ``claude``, ``claude_data`` and
    ``claude_data.zip`` name the same file. ValueError listing the known names for an unknown one."""
    registry = REGISTRY if registry is None else registry
    if not names:
        return list(registry)
    resolved = []
    for name in names:
        match = next((f for f in (name, f"{name}.zip", f"{name}_data.zip") if f in registry), None)
        if match is None:
            raise ValueError(f"unknown data file {str(name)[:80]!r}; known: {', '.join(registry)}")
        if match not in resolved:
            resolved.append(match)
    return resolved


def sha256(path) -> str:
    """Hex SHA-256 of the file ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(
    names=None,
    to=None,
    base_url: str | None = None,
    *,
    registry: dict | None = None,
    progress: bool = False,
    report: list | None = None,
) -> list[Path]:
    """Download the archives ``names`` (default: all of :data:`REGISTRY`) into ``to`` (default
    :func:`default_dir`) from ``base_url`` (default :data:`BASE_URL`; file NAME is at ``base_url + "data/NAME"``)
    and return their paths.

    A file already there with the right SHA-256 is not downloaded again. A download whose SHA-256 differs is
    refused (:class:`DownloadError`) and nothing of it is kept; a cached file that no longer matches is removed
    before it is downloaded again. ``registry`` maps file names to ``(sha256, bytes)`` (default
    :data:`REGISTRY`). When ``report`` is a list, one dict per file is appended to it: ``name``, ``path``,
    ``sha256``, ``bytes`` and ``downloaded`` (False when the cached copy was used)."""
    import pooch

    registry = REGISTRY if registry is None else registry
    files = resolve_names(names, registry)
    folder = Path(to).expanduser() if to is not None else default_dir()
    base_url = BASE_URL if base_url is None else base_url
    if not base_url.endswith("/"):
        base_url += "/"
    pooch.get_logger().setLevel("WARNING")
    paths = []
    for name in files:
        expected, size = _entry(registry[name])
        target = folder / name
        cached = target.is_file() and size in (None, target.stat().st_size) and sha256(target) == expected
        if target.exists() and not cached:
            target.unlink()  # a stale or damaged copy is never kept
        url = f"{base_url}data/{name}"
        if not cached:
            try:
                pooch.retrieve(url, known_hash=f"sha256:{expected}", fname=name, path=folder, progressbar=progress)
            except ValueError as error:
                if target.exists():
                    target.unlink()
                if "hash" in str(error).lower():
                    raise DownloadError(
                        f"{name} from {url}: SHA-256 does not match the pinned one ({expected[:12]}...); "
                        "refused, nothing kept (corrupted download or wrong --base-url)"
                    ) from None
                raise DownloadError(f"{name} from {url}: {_one_line(error)}") from None
            except Exception as error:  # requests' connection and HTTP errors
                if target.exists():
                    target.unlink()
                raise DownloadError(f"could not download {name} from {url}: {_one_line(error)}") from None
        if report is not None:
            report.append(
                {
                    "name": name,
                    "path": str(target),
                    "sha256": expected,
                    "bytes": target.stat().st_size,
                    "downloaded": not cached,
                }
            )
        paths.append(target)
    return paths


def _entry(value) -> tuple[str, int | None]:
    """(sha256, bytes or None) from a registry value: a bare hex digest or a (digest, bytes) pair."""
    if isinstance(value, str):
        return value.lower(), None
    digest, size = value
    return str(digest).lower(), None if size is None else int(size)


def _one_line(error: Exception) -> str:
    text = " ".join(str(error).split())
    return (text or type(error).__name__)[:300]
