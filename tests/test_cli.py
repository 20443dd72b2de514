import argparse
import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import millivid
from millivid.cli import build_parser, main, package_version
from millivid.device import resolve_device


def test_help_lists_subcommands(capsys):
    parser = build_parser()
    text = parser.format_help()
    assert "millivid" in text


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_python_dash_m_works():
    out = subprocess.run(
        [sys.executable, "-m", "millivid", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert "usage: millivid" in out.stdout


def _parsers(parser=None, path=()):
    """(command words, parser) of the top-level parser and every subcommand, depth first."""
    parser = parser or build_parser()
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def _subcommands(parser) -> dict:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"millivid {importlib.metadata.version('millivid')}\n"


def test_version_falls_back_to_the_module_version(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert package_version() == millivid.__version__


def test_help_shows_the_defaults(monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # one line per option: no wrapped defaults
    parser = build_parser()
    world_help = _subcommands(_subcommands(parser)["world"])["render"].format_help()
    assert "world/agent seed (default: 0)" in world_help
    assert "(default: auto)" in world_help
    make_help = _subcommands(_subcommands(parser)["data"])["make"].format_help()
    assert "videos per sub-folder (default: 256)" in make_help
    assert "named config (default: mini)" in make_help
    # nothing to say: no "(default: None)" or "(default: False)" on switches and optional flags
    assert "(default: None)" not in make_help and "(default: False)" not in make_help
    # a default that comes from the preset says each preset's value
    reproduce_help = _subcommands(parser)["reproduce"].format_help()
    assert (
        "training videos (default: the preset's: tiny 6, mini 1024, paper 10000)" in reproduce_help
    )
    assert "(default: millivid-own-level-memory,framepack-memory,fullres-memory)" in reproduce_help
    assert (
        "latent-encoding reader processes (default: min(8, CPU cores) and min(4, CPU cores))"
        in reproduce_help
    )


def test_every_option_with_a_default_says_it(monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    for path, parser in _parsers():
        text = parser.format_help()
        for action in parser._actions:
            default = action.default
            if not action.option_strings or default in (None, False, [], "", argparse.SUPPRESS):
                continue
            said = "default" in (action.help or "").lower() or f"(default: {default})" in text
            assert said, (
                f"millivid {' '.join(path)} {action.option_strings[0]}: default {default!r}"
            )


def test_every_argument_says_what_it_is():
    for path, parser in _parsers():
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
                continue
            name = action.option_strings[0] if action.option_strings else action.dest
            assert action.help, f"millivid {' '.join(path)} {name}: no help text"


def test_the_readme_table_lists_every_command_and_action():
    """A new user finds every subcommand (and each of its actions) in README's command table."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = [  # the first cell of each row (a cell may hold escaped pipes: train\|encode)
        re.split(r"(?<!\\)\|", line)[1]
        for line in readme.splitlines()
        if line.startswith("| `millivid ")
    ]
    for command, parser in _subcommands(build_parser()).items():
        cells = " ".join(cell for cell in rows if f"millivid {command}" in cell)
        assert cells, f"README's command table has no row for millivid {command}"
        for action in _subcommands(parser):
            assert re.search(rf"\b{action}\b", cells), f"README: millivid {command} {action}"


def test_device_defaults_to_auto_everywhere_and_resolves_here():
    here = "cuda:0" if torch.cuda.is_available() else "cpu"
    devices = [
        (path, action)
        for path, parser in _parsers()
        for action in parser._actions
        if "--device" in action.option_strings
    ]
    assert len(devices) >= 10  # world, data, ae x3, video, generate, evaluate, reproduce, demo
    for path, action in devices:
        assert action.default == "auto", path
        assert action.type(action.default) == here, path
    args = build_parser().parse_args(["data", "make", "--videos", "1", "--out", "x"])
    assert args.device == here


def test_resolve_device(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda", 0)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device("auto") == torch.device("cuda", 1)
    assert resolve_device("cuda") == torch.device("cuda", 1)
    assert resolve_device("cuda:3") == torch.device("cuda", 3)


def test_bad_device_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["world", "render", "--out", "x", "--device", "gpu"])
    assert exit_.value.code == 2
    assert "'gpu' is not a torch device" in capsys.readouterr().err


def test_one_resolve_device():
    root = Path(millivid.__file__).parent
    defined = [p for p in root.rglob("*.py") if "def resolve_device(" in p.read_text()]
    assert defined == [root / "device.py"]


# "the millivid model": the method's name in prose, not a command
PROSE_AFTER_MILLIVID = {"model", "models"}


def test_commands_named_in_help_exist():
    top = _subcommands(build_parser())
    mentions = []
    for path, parser in _parsers():
        texts = [parser.description, parser.epilog]
        for action in parser._actions:
            texts.append(action.help)
            texts += [c.help for c in getattr(action, "_choices_actions", [])]
        for text in filter(None, texts):
            for m in re.finditer(r"\bmillivid ([a-z][\w-]*)(?: ([a-z][\w-]*))?", text):
                mentions.append((path, m.group(0), m.group(1), m.group(2)))
    assert len(mentions) >= 3  # e.g. video train names `millivid ae encode`
    for path, mention, command, action in mentions:
        if command in PROSE_AFTER_MILLIVID:
            continue
        where = f"--help of millivid {' '.join(path)} names {mention!r}"
        assert command in top, f"{where}: no command {command!r}"
        actions = _subcommands(top[command])
        assert not actions or action in actions, f"{where}: {command} has no action {action!r}"


def test_config_prints_what_a_preset_and_a_variant_mean(capsys):
    from millivid.presets import PRESET_NAMES, Config, load_preset
    from millivid.typed_config import from_dict

    for name in PRESET_NAMES:
        assert main(["config", "--preset", name, "--set", "model.depth=3"]) == 0
        out = json.loads(capsys.readouterr().out)
        settings = {k: out.pop(k) for k in ("evaluate", "reproduce")}
        assert from_dict(Config, out) == load_preset(name, ["model.depth=3"])
        assert settings["evaluate"]["horizon_ends"] and settings["reproduce"]["variants"]
    assert main(["config", "--preset", "tiny", "--variant", "millivid-memory-aug"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["variant"], out["method"], out["plan"]["memory_frames"]) == (
        "millivid-memory-aug",
        "millivid",
        4,
    )
    assert out["diffusion"]["context_noise"] == 0.5
