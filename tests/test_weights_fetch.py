"""`millivid weights fetch` against a local HTTP server, and how `millivid evaluate` finds the files.

The table of published files is monkeypatched to URLs of small files on 127.0.0.1, with digests of
each kind (full SHA-256, SHA-256 prefix, git blob id, none); a guard fails any test that opens
another host.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import urllib.parse
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from millivid.cli import main
from millivid.weights import fetch as weights_fetch
from millivid.weights import files as weights
from millivid.weights.fetch import FetchError, fetch_weights, file_digest
from millivid.weights.files import (
    WEIGHT_FILES,
    MissingWeightsError,
    env_var,
    resolve_weight,
    weight_path,
)
from millivid.weights.lpips import AlexFeatures


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the server's folder; /cut/<file> promises more bytes than it sends, then hangs up."""

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path.startswith("/cut/"):
            body = (Path(self.directory) / self.path[len("/cut/") :]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + 1000))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(autouse=True)
def localhost_only(monkeypatch):
    """No test reaches past 127.0.0.1."""
    real = urllib.request.urlopen

    def urlopen(request, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        assert urllib.parse.urlsplit(url).hostname == "127.0.0.1", url
        return real(request, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    monkeypatch.delenv(weights.WEIGHTS_DIR_ENV, raising=False)
    for name in WEIGHT_FILES:
        monkeypatch.delenv(env_var(name), raising=False)


@pytest.fixture
def server(tmp_path):
    """(base URL, served folder, list of requested paths) of a server on a free local port."""
    served = tmp_path / "served"
    served.mkdir()

    def handler(*args, **kwargs):
        return Handler(*args, directory=str(served), **kwargs)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", served, httpd.requests
    httpd.shutdown()
    httpd.server_close()


def git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture
def table(server, monkeypatch):
    """Serve a small file per weight name and point WEIGHT_FILES at it: lpips with its full
    SHA-256, alexnet with a SHA-256 prefix, disk with a git blob id, the others with none."""
    base, served, _ = server
    contents = {}
    for i, (name, published) in enumerate(WEIGHT_FILES.items()):
        data = f"{name} weights {i}\n".encode() * (5000 + 100 * i)  # ~100 kB: several chunks
        (served / published.file).write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        digests = {"sha256": None, "sha256_prefix": "", "git_blob": ""}
        if name == "lpips":
            digests["sha256"] = sha
        elif name == "alexnet":
            digests["sha256_prefix"] = sha[:8]
        elif name == "disk":
            digests["git_blob"] = git_blob(data)
        entry = replace(published, url=f"{base}/{published.file}", **digests)
        monkeypatch.setitem(WEIGHT_FILES, name, entry)
        contents[name] = data
    monkeypatch.setattr(weights_fetch, "CHUNK_BYTES", 16 * 1024)
    return contents


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_file_digest_is_sha256_and_git_blob_id(tmp_path):
    f = tmp_path / "hello"
    f.write_bytes(b"hello\n")  # `printf 'hello\n' | git hash-object --stdin` and sha256sum
    d = file_digest(f)
    assert d.sha256 == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    assert d.git_blob == "ce013625030ba8dba906f756967f9e9ca394464a" and d.size == 6


def test_the_published_table_is_complete_and_honest():
    for name, p in WEIGHT_FILES.items():
        assert p.url.startswith("https://") and p.source and p.hash_source, name
        assert p.url.split("?")[0].endswith(p.file), name
        if p.sha256:
            assert len(p.sha256) == 64 and int(p.sha256, 16) >= 0, name
        if p.sha256_prefix:  # torch.hub names: <stem>-<first hex digits of the SHA-256>.pth
            assert p.file.rsplit(".", 1)[0].endswith("-" + p.sha256_prefix), name
    checks = {name: p.check for name, p in WEIGHT_FILES.items()}
    assert checks == {
        "alexnet": "sha256 prefix",
        "lpips": "sha256",
        "dino": "none",
        "disk": "git blob",
        "lightglue": "none",
        "fid": "none",
        "fvd": "none",
    }
    assert {f for g in weights.FETCH_GROUPS.values() for f in g} == set(WEIGHT_FILES)
    assert {f for g in weights.METRIC_WEIGHTS.values() for f in g} == set(WEIGHT_FILES)


def test_fetch_writes_every_file_and_checks_each_kind_of_digest(table, tmp_path, capsys):
    folder = tmp_path / "weights"
    assert main(["weights", "fetch", "all", "--dir", str(folder), "--no-progress"]) == 0
    for name, data in table.items():
        assert (folder / WEIGHT_FILES[name].file).read_bytes() == data
    assert leftovers(folder) == []
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if " downloaded " in line}
    assert set(lines) == set(WEIGHT_FILES)
    assert "SHA-256 verified" in lines["lpips"]
    assert "SHA-256 prefix" in lines["alexnet"] and "git blob" in lines["disk"]
    for name in ("dino", "lightglue", "fid", "fvd"):  # unverified files print their SHA-256
        assert "NOT verified" in lines[name]
        assert hashlib.sha256(table[name]).hexdigest() in lines[name]


def test_a_second_fetch_is_a_no_op_and_a_changed_file_is_replaced(table, server, tmp_path):
    _, _, requests = server
    folder = tmp_path / "w"
    first = fetch_weights(["lpips", "dino"], folder, progress=False)
    assert [r.action for r in first] == ["downloaded"] * 3 and len(requests) == 3
    again = fetch_weights(["lpips", "dino"], folder, progress=False)
    assert [r.action for r in again] == ["present"] * 3 and len(requests) == 3
    (folder / "alex.pth").write_bytes(b"damaged")
    (folder / "dinov2_vits14_pretrain.pth").write_bytes(b"unverifiable: kept as it is")
    third = {r.name: r.action for r in fetch_weights(["lpips", "dino"], folder, progress=False)}
    assert third == {"alexnet": "present", "lpips": "replaced", "dino": "present"}
    assert (folder / "alex.pth").read_bytes() == table["lpips"] and len(requests) == 4


def test_a_wrong_digest_fails_clearly_and_writes_nothing(table, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(WEIGHT_FILES, "lpips", replace(WEIGHT_FILES["lpips"], sha256="0" * 64))
    folder = tmp_path / "w"
    assert main(["weights", "fetch", "lpips", "fid", "--dir", str(folder), "--no-progress"]) == 1
    err = capsys.readouterr().err
    actual = hashlib.sha256(table["lpips"]).hexdigest()
    assert f"SHA-256 is {actual}, but" in err and "0" * 64 in err
    assert f"nothing was written to {folder / 'alex.pth'}" in err
    assert sorted(p.name for p in folder.iterdir()) == [  # the others are still fetched
        "alexnet-owt-7be5be79.pth",
        "inception-2015-12-05.pt",
    ]
    monkeypatch.setitem(  # a prefix or a git blob id that does not match fails the same way
        WEIGHT_FILES, "disk", replace(WEIGHT_FILES["disk"], git_blob="f" * 40)
    )
    with pytest.raises(FetchError, match="git blob id is .* but .* publishes f{40}"):
        fetch_weights(["disk"], folder, progress=False)
    assert not (folder / "depth-save.pth").exists() and leftovers(folder) == []


def test_a_failed_download_leaves_no_file(table, server, monkeypatch, tmp_path):
    base, _, _ = server
    folder = tmp_path / "w"
    for url, message in (
        (f"{base}/cut/i3d_torchscript.pt", "cannot download"),  # connection cut mid-file
        (f"{base}/no-such-file.pt", "404"),
        ("http://127.0.0.1:9/i3d_torchscript.pt", "cannot download"),  # nothing listens
    ):
        monkeypatch.setitem(WEIGHT_FILES, "fvd", replace(WEIGHT_FILES["fvd"], url=url))
        with pytest.raises(FetchError, match=message):
            fetch_weights(["fvd"], folder, progress=False)
        assert not (folder / "i3d_torchscript.pt").exists() and leftovers(folder) == []


def _lpips_files(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(AlexFeatures().state_dict(), folder / "alexnet-owt-7be5be79.pth")
    lins = {
        f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1)
        for i, c in enumerate((64, 192, 384, 256, 256))
    }
    torch.save(lins, folder / "alex.pth")


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "gt.npz", video=gt)
    np.savez(tmp_path / "pred.npz", video=np.roll(gt, 3, axis=2))
    pred, gt = str(tmp_path / "pred.npz"), str(tmp_path / "gt.npz")
    return ["evaluate", "--pred", pred, "--gt", gt, "--start", "0"]


def _lpips_values(argv, capsys) -> list[float]:
    assert main([*argv, "--metrics", "psnr,lpips", "--json"]) == 0
    return json.loads(capsys.readouterr().out)["per_frame"]["lpips"]


def test_evaluate_finds_the_weights_folder(pair, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "cache"
    _lpips_files(folder)
    monkeypatch.setenv(weights.WEIGHTS_DIR_ENV, str(folder))
    by_env = _lpips_values(pair, capsys)
    assert len(by_env) == 6 and all(v > 0 for v in by_env)
    monkeypatch.setenv(weights.WEIGHTS_DIR_ENV, str(tmp_path / "empty"))
    assert _lpips_values([*pair, "--weights-dir", str(folder)], capsys) == by_env
    # the specific flags win over the folder
    flags = [f"--{n}-weights={folder / WEIGHT_FILES[n].file}" for n in ("alexnet", "lpips")]
    assert (
        _lpips_values([*pair, "--weights-dir", str(tmp_path / "empty"), *flags], capsys) == by_env
    )


def test_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv(weights.WEIGHTS_DIR_ENV, str(tmp_path / "env-dir"))
    assert resolve_weight("fid")[0] == tmp_path / "env-dir" / "inception-2015-12-05.pt"
    assert (
        resolve_weight("fid", "", tmp_path / "d")[0] == tmp_path / "d" / "inception-2015-12-05.pt"
    )
    monkeypatch.setenv(env_var("fid"), str(tmp_path / "one.pt"))
    assert resolve_weight("fid", "", tmp_path / "d")[0] == tmp_path / "one.pt"
    assert (
        resolve_weight("fid", str(tmp_path / "flag.pt"), tmp_path / "d")[0] == tmp_path / "flag.pt"
    )
    monkeypatch.delenv(weights.WEIGHTS_DIR_ENV)
    default = Path("~/.cache/millivid/weights").expanduser() / "depth-save.pth"
    assert resolve_weight("disk")[0] == default


def test_the_missing_files_error_lists_them_all(pair, tmp_path, capsys):
    folder = tmp_path / "empty"
    assert main([*pair, "--metrics", "all", "--weights-dir", str(folder)]) == 1
    err = capsys.readouterr().err
    for published in WEIGHT_FILES.values():
        assert str(folder / published.file) in err
    assert f"millivid weights fetch all --dir {folder}" in err
    _lpips_files(folder)
    argv = [*pair, "--metrics", "psnr,lpips,matches,fvd", "--weights-dir", str(folder)]
    assert main([*argv, "--fvd-weights", str(tmp_path / "mine.pt")]) == 1
    err = capsys.readouterr().err
    assert "3 metric weight file(s) missing" in err and "alex.pth" not in err
    assert "depth-save.pth" in err and "disk_lightglue.pth" in err
    assert f"{tmp_path / 'mine.pt'}  (fvd" in err and "from --fvd-weights" in err
    assert f"millivid weights fetch lightglue fvd --dir {folder}" in err


def test_weight_path_names_the_file_the_flag_and_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv(weights.WEIGHTS_DIR_ENV, str(tmp_path))
    with pytest.raises(MissingWeightsError) as err:
        weight_path("alexnet")
    text = str(err.value)
    assert str(tmp_path / "alexnet-owt-7be5be79.pth") in text and "--alexnet-weights" in text
    assert f"millivid weights fetch lpips --dir {tmp_path}" in text


def test_weights_list_shows_each_file(table, tmp_path, capsys):
    folder = tmp_path / "w"
    fetch_weights(["fid"], folder, progress=False)
    (folder / "alex.pth").write_bytes(b"not it")
    assert main(["weights", "list", "--dir", str(folder)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[1:-1]}
    assert "NOT verified" in rows["fid"] and "WRONG" in rows["lpips"]
    assert rows["dino"].endswith("missing")
    assert out.splitlines()[-1].endswith(
        f"millivid weights fetch lpips dino lightglue fvd --dir {folder}"
    )
