"""Atomic writes: unique temporaries, concurrent writers, and one place in millivid that renames."""

import ast
import json
import threading
from pathlib import Path

import pytest

import millivid
from millivid.atomic import atomic_path, is_temporary, write_json_atomic, write_text_atomic

PACKAGE = Path(millivid.__file__).parent
# the only functions that may rename: atomic_path itself and the checkpoint folder swap
MAY_RENAME = {("atomic.py", "atomic_path"), ("train/checkpoint.py", "swap_in_folder")}


def renames(source: str) -> list[tuple[str, int]]:
    """(enclosing function, line) of every call that renames a file: ``os.replace``, ``os.rename``,
    ``shutil.move``, and ``x.replace(y)`` / ``x.rename(y)`` with one argument that is not a string
    literal (``Path.replace``/``Path.rename``; ``str.replace`` takes two)."""
    found = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value.id if isinstance(node.func.value, ast.Name) else None
            name = node.func.attr
            module_call = (owner, name) in {("os", "replace"), ("os", "rename"), ("shutil", "move")}
            path_call = (
                name in ("replace", "rename")
                and owner not in ("os", "dataclasses")
                and len(node.args) == 1
                and not node.keywords
                and not (
                    isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                )
            )
            if module_call or path_call:
                found.append((function, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(source), "<module>")
    return found


def test_the_scan_finds_renames_and_not_string_replaces():
    source = (
        "import os, shutil, dataclasses\n"
        "def f(tmp, path, cfg, s):\n"
        "    os.replace(tmp, path)\n"
        "    os.rename(tmp, path)\n"
        "    shutil.move(tmp, path)\n"
        "    tmp.replace(path)\n"
        "    (path.parent / 'x.tmp').rename(path)\n"
        "    s.replace('a', 'b')\n"
        "    s.replace('**', '')\n"
        "    dataclasses.replace(cfg, **{})\n"
        "    cfg.replace(depth=2)\n"
    )
    assert renames(source) == [("f", line) for line in range(3, 8)]


def test_only_atomic_path_and_the_checkpoint_swap_rename_files():
    """Every other writer goes through millivid.atomic (unique temporary names)."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        for function, line in renames(path.read_text()):
            if (rel, function) not in MAY_RENAME:
                offenders.append(f"millivid/{rel}:{line} in {function}")
    assert not offenders, "write through millivid.atomic.atomic_path instead: " + ", ".join(
        offenders
    )


def test_temporaries_are_unique_hidden_and_keep_the_suffix(tmp_path):
    target = tmp_path / "sub" / "curves.png"
    with atomic_path(target) as a, atomic_path(target) as b:
        assert a != b and a.parent == b.parent == target.parent
        assert a.suffix == b.suffix == ".png"  # matplotlib and ffmpeg pick the format from it
        assert is_temporary(a) and is_temporary(b)
        a.write_bytes(b"a")
        b.write_bytes(b"b")
    assert target.read_bytes() == b"a"  # the last rename wins
    assert [p.name for p in target.parent.iterdir()] == ["curves.png"]


def test_text_and_json_writers(tmp_path):
    write_text_atomic(tmp_path / "t.md", "| a |\n")
    write_json_atomic(tmp_path / "r.json", {"b": 1, "a": [1.5]})
    assert (tmp_path / "t.md").read_text() == "| a |\n"
    assert (tmp_path / "r.json").read_text() == '{\n  "b": 1,\n  "a": [\n    1.5\n  ]\n}\n'
    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "r.json", {"a": object()})  # not JSON: previous file stays
    assert json.loads((tmp_path / "r.json").read_text()) == {"b": 1, "a": [1.5]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "t.md"]


def test_two_writers_of_one_file_never_leave_a_mixed_or_partial_file(tmp_path):
    """Two threads rewrite one file many times, in chunks, while a third reads it: every read
    and the final file are one writer's complete content, and no temporary is left."""
    target = tmp_path / "out.bin"
    chunk, chunks, rounds = 4096, 16, 40
    contents = {w: bytes([w]) * (chunk * chunks) for w in (1, 2)}
    target.write_bytes(contents[1])
    start, done = threading.Barrier(3), threading.Event()
    bad, errors = [], []

    def writer(w: int) -> None:
        try:
            start.wait()
            for _ in range(rounds):
                with atomic_path(target) as tmp, tmp.open("wb") as f:
                    for i in range(chunks):
                        f.write(contents[w][i * chunk : (i + 1) * chunk])
                        f.flush()
        except BaseException as err:  # reported below, not lost in the thread
            errors.append(err)

    def reader() -> None:
        start.wait()
        while not done.is_set():
            data = target.read_bytes()
            if data not in contents.values():
                bad.append((len(data), set(data)))

    threads = [threading.Thread(target=writer, args=(w,)) for w in (1, 2)]
    watcher = threading.Thread(target=reader)
    for t in [*threads, watcher]:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watcher.join()
    assert not errors, errors
    assert not bad, f"mixed or partial reads (length, bytes): {bad[:3]}"
    assert target.read_bytes() in contents.values()
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_read_json_names_a_file_that_is_not_json(tmp_path):
    from millivid.atomic import read_json

    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    write_json_atomic(good, {"a": [1, 2]})
    bad.write_text('{"a": ')  # cut short
    assert read_json(good) == {"a": [1, 2]}
    with pytest.raises(ValueError, match=f"{bad}: not valid JSON"):
        read_json(bad)
    with pytest.raises(FileNotFoundError):
        read_json(tmp_path / "missing.json")
