import pytest

from millivid.cli import build_parser, main


def test_video_train_parses_every_method_and_flag():
    parser = build_parser()
    args = parser.parse_args(
        "video train --method framepack --preset tiny --latents L --out R --resume "
        "--attention context-causal --set model.depth=3".split()
    )
    assert (args.method, args.preset, args.resume, args.attention) == (
        "framepack",
        "tiny",
        True,
        "context-causal",
    )
    assert args.overrides == ["model.depth=3"]
    with pytest.raises(SystemExit):
        parser.parse_args("video train --method nope --latents L --out R".split())


def test_missing_latent_cache_is_a_clear_error(tmp_path, capsys):
    code = main(
        [
            "video",
            "train",
            "--method",
            "millivid",
            "--latents",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert code == 1
    assert "no such latent cache directory" in capsys.readouterr().err


def test_unknown_config_key_is_a_clear_error(tmp_path, capsys):
    code = main(
        [
            "video",
            "train",
            "--method",
            "millivid",
            "--latents",
            str(tmp_path),
            "--out",
            str(tmp_path / "run"),
            "--set",
            "model.nope=1",
        ]
    )
    assert code == 1
    assert "nope" in capsys.readouterr().err
