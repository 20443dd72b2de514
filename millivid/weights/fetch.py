"""Download the published metric weights into the weights folder (``millivid weights fetch``).

Each file is streamed from its official URL (``weights.WEIGHT_FILES``) into a temporary file beside
the target, checked against the digest its publisher releases, and only then renamed to its
published name (millivid.atomic): the folder never holds a partial or rejected download
under that name. A file already there with the right digest is not downloaded again.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from millivid.atomic import atomic_path
from millivid.weights.files import FETCH_GROUPS, WEIGHT_FILES, PublishedFile, weights_dir

CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60  # per socket operation, not per file


class FetchError(ValueError):
    """A download failed, or gave a file whose digest is not the published one."""


@dataclass(frozen=True)
class Digest:
    """The digests of one file's bytes that publishers release."""

    sha256: str
    git_blob: str  # git's object id: SHA-1 of b"blob <size>\0" + content
    size: int


@dataclass(frozen=True)
class FetchResult:
    """One weight file after ``fetch_weights``: where it is, what was done, how it was checked."""

    name: str
    path: Path
    action: str  # "present" (kept), "downloaded", or "replaced" (the old file's digest was wrong)
    sha256: str
    checked: str  # what the digest was checked against, or that nothing is published

    def line(self) -> str:
        return f"{self.name:9s} {self.action:10s} {self.path}  sha256 {self.sha256}  {self.checked}"


def file_digest(path: str | os.PathLike) -> Digest:
    """SHA-256 and git blob id of the file at ``path``, read in chunks."""
    size = Path(path).stat().st_size
    sha256, blob = hashlib.sha256(), hashlib.sha1(f"blob {size}\0".encode())
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            sha256.update(chunk)
            blob.update(chunk)
    return Digest(sha256.hexdigest(), blob.hexdigest(), size)


def digest_problem(published: PublishedFile, digest: Digest) -> str | None:
    """Why ``digest`` is not the published one, or None when it matches (or nothing is published)."""
    if published.sha256:
        expected, actual, kind = published.sha256.lower(), digest.sha256, "SHA-256"
    elif published.sha256_prefix:
        expected, kind = published.sha256_prefix.lower(), "SHA-256 prefix"
        actual = digest.sha256[: len(expected)]
    elif published.git_blob:
        expected, actual, kind = published.git_blob.lower(), digest.git_blob, "git blob id"
    else:
        return None
    if actual == expected:
        return None
    return (
        f"{kind} is {actual}, but {published.source} publishes {expected} "
        f"({digest.size} bytes received)"
    )


def check_text(published: PublishedFile) -> str:
    """What a file that passes ``digest_problem`` has been checked against."""
    return {
        "sha256": "SHA-256 verified",
        "sha256 prefix": f"SHA-256 prefix {published.sha256_prefix} verified "
        "(only the prefix is published)",
        "git blob": f"git blob {published.git_blob[:12]} verified",
        "none": "NOT verified: no published hash",
    }[published.check]


def weight_names(names: Iterable[str]) -> list[str]:
    """``fetch`` arguments (lpips, dino, lightglue, fid, fvd, all, or one file's name such as
    alexnet) -> the weight file names, in table order."""
    wanted: set[str] = set()
    for name in names:
        if name == "all":
            wanted |= set(WEIGHT_FILES)
        elif name in FETCH_GROUPS:
            wanted |= set(FETCH_GROUPS[name])
        elif name in WEIGHT_FILES:
            wanted.add(name)
        else:
            known = ", ".join(dict.fromkeys([*FETCH_GROUPS, "all", *WEIGHT_FILES]))
            raise ValueError(f"no weights named {name!r} (known: {known})")
    return [n for n in WEIGHT_FILES if n in wanted]


def download(url: str, dest: Path, progress: bool = True, desc: str = "") -> int:
    """Stream ``url`` into ``dest`` with a tqdm bar; the number of bytes; errors name the URL."""
    request = urllib.request.Request(url, headers={"User-Agent": "millivid-weights-fetch"})
    got = 0
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, open(dest, "wb") as f:
            length = response.headers.get("Content-Length", "")
            total = int(length) if length.isdigit() else None
            with tqdm(
                total=total,
                desc=desc,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                disable=not progress,
            ) as bar:
                while chunk := response.read(CHUNK_BYTES):
                    f.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
    except (OSError, http.client.HTTPException) as err:  # URLError, timeouts, cut connections
        raise FetchError(f"cannot download {url}: {err!r}") from err
    if total is not None and got != total:
        raise FetchError(f"cannot download {url}: got {got} of {total} bytes")
    return got


def fetch_one(
    name: str, folder: str | os.PathLike | None = None, progress: bool = True
) -> FetchResult:
    """Make ``folder/<published file>`` of weight ``name`` hold the published bytes.

    Returns a FetchResult; raises FetchError (nothing new under the published name) when the
    download fails or its digest is not the published one.
    """
    published = WEIGHT_FILES[name]
    target = weights_dir(folder) / published.file
    action = "downloaded"
    if target.is_file():
        digest = file_digest(target)
        if digest_problem(published, digest) is None:
            return FetchResult(name, target, "present", digest.sha256, check_text(published))
        action = "replaced"
    try:
        with atomic_path(target) as tmp:
            download(published.url, tmp, progress, published.file)
            digest = file_digest(tmp)
            if problem := digest_problem(published, digest):
                raise FetchError(f"{published.url}: {problem}")
    except FetchError as err:
        raise FetchError(
            f"{published.file} ({name}): {err}; nothing was written to {target}"
        ) from err
    return FetchResult(name, target, action, digest.sha256, check_text(published))


def fetch_weights(
    names: Iterable[str] = ("all",),
    folder: str | os.PathLike | None = None,
    progress: bool = True,
    report: Callable[[FetchResult], object] | None = None,
) -> list[FetchResult]:
    """Fetch every weight file of ``names`` (see ``weight_names``) into the weights folder.

    Every file is tried; ``report`` sees each result as it is done, and one FetchError listing
    every failed file is raised at the end.
    """
    results, failures = [], []
    for name in weight_names(names):
        try:
            result = fetch_one(name, folder, progress)
        except FetchError as err:
            failures.append(str(err))
            continue
        results.append(result)
        if report is not None:
            report(result)
    if failures:
        raise FetchError(
            f"{len(failures)} weight file(s) not fetched:\n"
            + "\n".join(f"  {f}" for f in failures)
            + f"\nWithout a network here: download each URL elsewhere, copy the file into "
            f"{weights_dir(folder)} under its published name, and check it with "
            "millivid weights list"
        )
    return results


def weight_status(folder: str | os.PathLike | None = None) -> list[tuple[str, Path, str]]:
    """(name, path, state) of every weight file in the weights folder: missing, or its digest
    and what it was checked against."""
    rows = []
    for name, published in WEIGHT_FILES.items():
        path = weights_dir(folder) / published.file
        if not path.is_file():
            state = "missing"
        else:
            digest = file_digest(path)
            problem = digest_problem(published, digest)
            state = f"WRONG: {problem}" if problem else check_text(published)
            state += f"  sha256 {digest.sha256}"
        rows.append((name, path, state))
    return rows
