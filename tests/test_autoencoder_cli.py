import json
import shutil

import torch
from safetensors.torch import load_file, save_file

from millivid.cli import main
from millivid.data.latent_cache import LatentCache


def test_make_train_encode_recon_end_to_end(tmp_path, capsys):
    data, run, latents = tmp_path / "data", tmp_path / "ae", tmp_path / "latents"
    assert (
        main(
            [
                "data",
                "make",
                "--preset",
                "tiny",
                "--videos",
                "2",
                "--frames",
                "24",
                "--out",
                str(data),
            ]
        )
        == 0
    )
    steps = [
        "--set",
        "ae_train.steps=6",
        "--set",
        "ae_train.batch_size=4",
        "--set",
        "ae_train.checkpoint_every=3",
    ]
    assert (
        main(
            [
                "ae",
                "train",
                "--preset",
                "tiny",
                "--data",
                str(data),
                "--out",
                str(run),
                "--device",
                "cpu",
                *steps,
            ]
        )
        == 0
    )
    config = json.loads((run / "checkpoint" / "config.json").read_text())
    assert config["stage"] == "autoencoder" and config["ae"]["levels"] == 3
    assert (
        main(["ae", "encode", "--ckpt", str(run), "--data", str(data), "--out", str(latents)]) == 0
    )
    cache = LatentCache(latents)
    assert len(cache) == 2 and cache.tokens_per_frame == (16, 4, 1)
    # videos read by worker processes (the default) or by this one: the same latents; a file
    # that is missing is encoded again, the others are kept
    again = tmp_path / "latents-0"
    shutil.copytree(latents, again)
    (again / "000001.safetensors").unlink()
    kept = (again / "000000.safetensors").stat().st_mtime_ns
    encode_here = ["ae", "encode", "--ckpt", str(run), "--data", str(data), "--workers", "0"]
    assert main([*encode_here, "--out", str(again)]) == 0
    assert (again / "000000.safetensors").stat().st_mtime_ns == kept
    for name in ("000000.safetensors", "000001.safetensors"):
        a, b = load_file(latents / name), load_file(again / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the cascaded model is trained over a cascaded autoencoder's levels, not these
    assert cache.autoencoder_kind == "hierarchical"
    video = ["video", "train", "--preset", "tiny", "--latents", str(latents), "--device", "cpu"]
    capsys.readouterr()
    assert main([*video, "--method", "cascaded", "--out", str(tmp_path / "vc")]) == 1
    assert "latents of a hierarchical autoencoder, but method cascaded" in capsys.readouterr().err
    # the same autoencoder again resumes; another one may not add its latents to this cache
    encode = ["ae", "encode", "--data", str(data), "--out", str(latents)]
    assert main([*encode, "--ckpt", str(run)]) == 0
    other = tmp_path / "ae-other"
    shutil.copytree(run, other)
    weights = load_file(other / "checkpoint" / "model.safetensors")
    first = next(iter(weights))
    weights[first] = weights[first] + 1
    save_file(weights, other / "checkpoint" / "model.safetensors")
    capsys.readouterr()
    assert main([*encode, "--ckpt", str(other)]) == 1
    assert "holds latents of another autoencoder" in capsys.readouterr().err
    assert json.loads((latents / "cache.json").read_text())["autoencoder"] == str(run)
    levels, actions = cache.load(0)
    assert [tuple(z.shape) for z in levels] == [(24, 4, 4, 4), (24, 2, 2, 4), (24, 1, 1, 4)]
    assert actions.shape == (24,) and actions.dtype == torch.int64
    video = sorted(data.rglob("*.npz"))[0]
    assert (
        main(
            [
                "ae",
                "recon",
                "--ckpt",
                str(run),
                "--video",
                str(video),
                "--out",
                str(tmp_path / "g.png"),
                "--frames",
                "2",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "level 2: PSNR" in out and (tmp_path / "g.png").stat().st_size > 0
    assert main(["ae", "export", "--ckpt", str(run), "--out", str(tmp_path / "bf16")]) == 0
    full = (run / "checkpoint" / "model.safetensors").stat().st_size
    half = (tmp_path / "bf16" / "checkpoint" / "model.safetensors").stat().st_size
    assert half < 0.6 * full
    assert (
        main(
            [
                "ae",
                "recon",
                "--ckpt",
                str(tmp_path / "bf16"),
                "--video",
                str(video),
                "--out",
                str(tmp_path / "h.png"),
                "--frames",
                "1",
            ]
        )
        == 0
    )


def test_encode_with_a_non_autoencoder_checkpoint_is_refused(tmp_path, capsys):
    from millivid.train import write_checkpoint

    write_checkpoint(tmp_path / "run", {"w": torch.zeros(1)}, {"stage": "video"})
    assert (
        main(
            [
                "ae",
                "encode",
                "--ckpt",
                str(tmp_path / "run"),
                "--data",
                str(tmp_path),
                "--out",
                str(tmp_path / "l"),
            ]
        )
        == 1
    )
    assert "not an autoencoder checkpoint" in capsys.readouterr().err
