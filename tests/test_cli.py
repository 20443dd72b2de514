import subprocess
import sys

from millivid.cli import build_parser, main


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
