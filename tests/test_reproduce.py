"""`millivid reproduce` on the tiny preset: every stage runs, outputs land where evaluate/report
read them, and a re-run skips finished stages (resume after an interruption)."""

import json
import os
import shutil
import signal
import time

import numpy as np
import pytest
import torch

from millivid.cli import main
from millivid.data.make import make_dataset
from millivid.presets import load_preset
from millivid.reproduce import StageClock

FAST = [
    "--preset", "tiny",
    "--variants", "millivid-cc,fullres",
    "--set", "video_train.steps=6",
    "--set", "ae_train.steps=4",
    "--sample-steps", "2",
    "--metrics", "psnr,ssim",
    "--device", "cpu",
]  # fmt: skip


def run(out, *extra):
    return main(["reproduce", "--out", str(out), *FAST, *extra])


def test_every_stage_writes_its_outputs_and_a_rerun_skips_them(tmp_path, capsys):
    out = tmp_path / "run"
    # interrupted after the latent cache: the next call goes on from there
    assert run(out, "--stages", "data,ae,latents") == 0
    assert not (out / "video").exists()
    assert run(out) == 0
    assert "report:" in capsys.readouterr().out
    for variant in ("millivid-cc", "fullres"):
        files = sorted((out / "rollouts" / variant).glob("*.npz"))
        assert [f.name for f in files] == ["000000.npz", "000001.npz"]
        with np.load(files[0]) as f, np.load(out / "gt" / "000000.npz") as g:
            assert f["video"].shape == (96, 32, 32, 3)  # 32 context + 64 generated
            assert np.array_equal(f["video"][:32], g["video"][:32])  # context kept as given
            assert not np.array_equal(f["video"][32:], g["video"][32:])
        assert (out / "plans" / f"{variant}.png").stat().st_size > 0
        state = json.loads((out / "video" / variant / "checkpoint" / "config.json").read_text())
        assert state["stage"] == "video"
        cache = json.loads((out / "latents" / "cache.json").read_text())
        assert state["autoencoder_digest"] == cache["autoencoder_digest"] is not None
    table = (out / "eval" / "table.md").read_text()
    assert "millivid-cc" in table and "fullres" in table
    baselines = ("copy-last", "context-mean", "nearest-pose", "autoencoder", "nearest-pose-ae")
    for baseline in baselines:  # every table has them, and the two through the run's autoencoder
        assert f"| {baseline} |" in table
        assert len(list((out / "rollouts" / baseline).glob("*.npz"))) == 2
    with (
        np.load(out / "rollouts" / "autoencoder" / "000000.npz") as f,
        np.load(out / "gt" / "000000.npz") as g,
    ):  # the ground truth, decoded: the context kept, the rest close but not equal
        assert np.array_equal(f["video"][:32], g["video"][:32])
        assert not np.array_equal(f["video"][32:], g["video"][32:])
    assert (out / "report.html").stat().st_size > 0
    assert (out / "eval" / "grid.png").stat().st_size > 0  # GT + one row per method
    stages = json.loads((out / "stages.json").read_text())
    assert {"data", "ae", "latents", "video/fullres", "rollout/millivid-cc", "evaluate"} <= set(
        stages
    )
    watched = [
        out / "video" / "fullres" / "checkpoint" / "model.safetensors",
        out / "rollouts" / "fullres" / "000000.npz",
        out / "eval" / "results.json",
        out / "report.html",
    ]
    before = [p.stat().st_mtime_ns for p in watched]
    assert run(out) == 0
    assert [p.stat().st_mtime_ns for p in watched] == before


def test_unknown_variant_and_stage_are_errors(tmp_path, capsys):
    assert run(tmp_path / "a", "--variants", "nope") == 1
    assert "unknown variant 'nope'" in capsys.readouterr().err
    assert run(tmp_path / "b", "--stages", "data,fly") == 1
    assert "unknown stage 'fly'" in capsys.readouterr().err


def test_video_export_is_bf16_and_loads(tmp_path):
    from safetensors.torch import load_file

    from millivid.rollout.generate import load_video_model

    out = tmp_path / "run"
    ema = ["--set", "video_train.ema_decay=0.9"]
    assert run(out, "--variants", "fullres", "--stages", "data,ae,latents,video", *ema) == 0
    run_dir, shipped = out / "video" / "fullres", tmp_path / "shipped"
    assert main(["video", "export", "--ckpt", str(run_dir), "--out", str(shipped)]) == 0
    weights = load_file(str(shipped / "checkpoint" / "model.safetensors"))
    ema = load_file(str(run_dir / "checkpoint" / "ema.safetensors"))
    floats = [k for k, w in weights.items() if w.is_floating_point()]
    assert floats and all(weights[k].dtype == torch.bfloat16 for k in floats)
    assert all(torch.equal(weights[k], ema[k].to(torch.bfloat16)) for k in floats)  # EMA exported
    model, cfg, method = load_video_model(shipped, "cpu")
    assert method == "fullres" and cfg.preset == "tiny"


def test_cascaded_variants_train_and_use_their_own_autoencoder(tmp_path):
    out = tmp_path / "run"
    # MILLIVID's and FramePack's plan (paper Fig. 6, 7), the first also in the recipes with
    # level-0 memory and with memory at each step's own level
    variants = "cascaded,cascaded-framepack,cascaded-memory-aug,cascaded-own-level-memory"
    variants += ",cascaded-framepack-memory"  # Fig. 7's, with the baselines' memory frames
    assert run(out, "--variants", variants, "--stages", "data,ae,latents,video,rollout") == 0
    for folder, kind in (("ae", "hierarchical"), ("ae-cascaded", "cascaded")):
        saved = json.loads((out / folder / "checkpoint" / "config.json").read_text())
        assert saved["ae"]["kind"] == kind
    assert any((out / "latents-cascaded").iterdir())
    for variant, method in (
        ("cascaded", "cascaded"),
        ("cascaded-framepack", "hierarchical-framepack"),
        ("cascaded-memory-aug", "cascaded"),
        ("cascaded-own-level-memory", "cascaded"),
        ("cascaded-framepack-memory", "hierarchical-framepack"),
    ):
        video = json.loads((out / "video" / variant / "checkpoint" / "config.json").read_text())
        assert (video["method"], video["ae"]["kind"]) == (method, "cascaded")
        assert video["plan"]["memory_frames"] == (4 if "memory" in variant else 0), variant
        assert len(list((out / "rollouts" / variant).glob("*.npz"))) == 2


def test_the_pooled_cascaded_variant_shares_level_0_with_the_hierarchical_autoencoder(tmp_path):
    """Fig. 6's cascaded model as the paper words it: the hierarchical autoencoder's own level 0,
    mean-pooled for the coarser levels (derived, not trained), its cache, model and rollouts,
    and FramePack's plan over the same levels (Fig. 7's cascaded FramePack)."""
    from millivid.data.latent_cache import LatentCache

    out = tmp_path / "run"
    variant, framepack = "cascaded-pooled-own-level-memory", "cascaded-pooled-framepack-memory"
    variants = f"{variant},{framepack}"
    assert run(out, "--variants", variants, "--stages", "data,ae,latents,video,rollout") == 0
    saved = json.loads((out / "ae-pooled" / "checkpoint" / "config.json").read_text())
    assert saved["ae"]["kind"] == "pooled" and not (out / "ae-cascaded").exists()
    hier, pooled = LatentCache(out / "latents"), LatentCache(out / "latents-pooled")
    assert pooled.autoencoder_kind == "pooled"
    (h, _), (p, _) = hier.load(0), pooled.load(0)
    assert torch.equal(h[0], p[0])  # the same level 0, to the bit
    for lvl in range(1, len(p)):
        # coarser levels: level 0 mean-pooled (in the raw latents), standardized per channel
        assert p[lvl].shape == h[lvl].shape and not torch.allclose(p[lvl], h[lvl])
        assert abs(float(p[lvl].mean())) < 0.5 and 0.5 < float(p[lvl].std()) < 2
    for name, method in ((variant, "cascaded"), (framepack, "hierarchical-framepack")):
        video = json.loads((out / "video" / name / "checkpoint" / "config.json").read_text())
        assert (video["method"], video["ae"]["kind"]) == (method, "pooled")
        assert len(list((out / "rollouts" / name).glob("*.npz"))) == 2


def test_a_variant_trains_over_its_methods_autoencoder_unless_it_names_another():
    from millivid.plan import METHODS
    from millivid.presets import load_preset
    from millivid.variants import VARIANTS, Variant, variant_config

    assert {name: m.ae for name, m in METHODS.items() if m.ae != "hierarchical"} == {
        "cascaded": "cascaded"
    }
    assert Variant("cascaded").autoencoder == "cascaded"
    assert Variant("millivid", ae="cascaded").autoencoder == "cascaded"
    cfg = load_preset("tiny")
    for name, variant in VARIANTS.items():
        method, vcfg = variant_config(cfg, name)
        assert vcfg.ae.kind == variant.autoencoder == (variant.ae or METHODS[method].ae), name
    assert {name for name, v in VARIANTS.items() if v.autoencoder == "pooled"} == {
        "cascaded-pooled-own-level-memory",
        "cascaded-pooled-framepack-memory",  # FramePack's plan over the pooled levels (Fig. 7)
    }
    cascaded = {name for name, v in VARIANTS.items() if v.autoencoder == "cascaded"}
    assert cascaded == {
        "cascaded",
        "cascaded-framepack",  # FramePack's plan over the cascaded levels: named by the variant
        "cascaded-memory-aug",
        "cascaded-own-level-memory",
        "cascaded-framepack-memory",
    }


def test_balanced_variant_weights_every_target_level_equally():
    from millivid.presets import load_preset
    from millivid.variants import variant_config

    cfg = load_preset("tiny")
    method, bal = variant_config(cfg, "millivid-balanced")
    assert method == "millivid" and bal.model.attention == "full"
    assert bal.plan.level_weights == (1.0,) * len(cfg.plan.tokens)
    assert variant_config(cfg, "millivid")[1].plan.level_weights == ()


def test_video_stage_command_relaunches_the_same_run_under_torchrun():
    from millivid.cli.reproduce import video_stage_command

    cmd = video_stage_command(["reproduce", "--out", "R", "--gpus", "2", "--stages=data,video"], 2)
    assert cmd[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert cmd[5:] == ["-m", "millivid", "reproduce", "--out", "R", "--stages", "video"]
    # options before the command (the attention kernel) reach the relaunched processes
    cmd = video_stage_command(["--sdpa", "flash", "reproduce", "--out", "R", "--gpus", "2"], 2)
    assert cmd[5:] == ["-m", "millivid", "--sdpa", "flash", "reproduce", "--out", "R"] + [
        "--stages",
        "video",
    ]


def test_gpus_2_trains_the_video_models_with_ddp_on_two_processes(tmp_path):
    # on the CPU the two processes talk over gloo: the same command a 2-GPU machine runs
    out = tmp_path / "run"
    assert run(out, "--stages", "data,ae,latents") == 0
    assert run(out, "--stages", "video", "--gpus", "2", "--variants", "fullres") == 0
    log = [json.loads(line) for line in (out / "video" / "fullres" / "metrics.jsonl").open()]
    assert log[-1]["step"] == 6  # one run, written once (by rank 0)
    assert (out / "video" / "fullres" / "checkpoint" / "model.safetensors").is_file()
    assert "video/fullres" in json.loads((out / "stages.json").read_text())


def test_the_default_memory_variants_and_conditioning_augmentation_run_end_to_end(tmp_path):
    """reproduce's defaults (memory frames retrieved by pose, for every method) and the
    conditioning-augmentation variant train, roll out and are scored."""
    out = tmp_path / "run"
    variants = "millivid-memory,framepack-memory,fullres-memory,millivid-memory-aug"
    variants += ",millivid-split-memory"  # memory at a level per target level
    variants += ",upscale-own-level-memory"  # rollout + upscaling, memory at its own level
    variants += ",mirrored-framepack-memory"  # FramePack with discarded coarse targets (Fig. 7)
    variants += ",hierarchical-framepack-memory"  # FramePack's plan over hierarchical levels
    assert run(out, "--variants", variants) == 0
    for variant in variants.split(","):
        assert len(list((out / "rollouts" / variant).glob("*.npz"))) == 2, variant
        saved = json.loads((out / "video" / variant / "checkpoint" / "config.json").read_text())
        assert saved["plan"]["memory_frames"] == 4
    saved = json.loads(
        (out / "video" / "millivid-split-memory" / "checkpoint" / "config.json").read_text()
    )
    assert saved["plan"]["memory_levels"] == [0, 1, 1]
    saved = json.loads(
        (out / "video" / "millivid-memory-aug" / "checkpoint" / "config.json").read_text()
    )
    assert saved["diffusion"]["context_noise"] == 0.5
    assert saved["diffusion"]["sample_context_noise"] == 0.1
    assert "millivid-memory-aug" in (out / "eval" / "table.md").read_text()


def test_only_the_test_videos_carry_labels_and_depth(tmp_path):
    """Training reads frames, actions and poses; the evaluation reads the test videos' labels.
    A training folder begun with labels and depth (before this rule) goes on with them."""
    out = tmp_path / "run"
    assert run(out, "--stages", "data") == 0
    keys = {s: dataset_json(out, s)["keys"] for s in SPLITS}
    assert keys == {"train": ["video", "actions", "poses"], "test": [*KEYS, "labels", "depth"]}
    with np.load(out / "data" / "train" / "0000" / "000000.npz") as f:
        assert sorted(f.files) == sorted(KEYS)

    older = tmp_path / "older"
    assert run(older, "--stages", "data") == 0
    train = older / "data" / "train"
    shutil.rmtree(train)
    n = len(dataset_json(out, "train")["files"])
    make_dataset(train, load_preset("tiny").world, n, shard_size=n, progress=False)
    meta = json.loads((train / "dataset.json").read_text())
    (train / "dataset.json").write_text(json.dumps(meta | {"complete": False}))
    (train / meta["files"][-1]).unlink()  # stopped before its last video
    assert run(older, "--stages", "data") == 0
    assert dataset_json(older, "train")["complete"]
    with np.load(train / meta["files"][-1]) as f:
        assert {"labels", "depth"} <= set(f.files)


SPLITS, KEYS = ("train", "test"), ["video", "actions", "poses"]


def dataset_json(run_dir, split):
    """The dataset.json of one split of a run folder."""
    return json.loads((run_dir / "data" / split / "dataset.json").read_text())


def test_a_variant_without_rollouts_is_named_not_silently_left_out(tmp_path, capsys):
    """A variant whose rollout stage failed (e.g. its latents exploded) has no rollouts: the
    evaluation says so and the table names it, the other variants are evaluated."""
    out = tmp_path / "run"
    variants = ["--variants", "fullres,framepack"]
    assert run(out, *variants, "--stages", "data,ae,latents,video,rollout") == 0
    for f in (out / "rollouts" / "framepack").glob("*.npz"):
        f.unlink()
    assert run(out, *variants, "--stages", "evaluate") == 0
    assert "warning: no rollouts of framepack" in capsys.readouterr().out
    table = (out / "eval" / "table.md").read_text()
    assert "| fullres |" in table and "| framepack |" not in table
    assert "Not in this table (no rollouts): framepack." in table


def test_continuation_carries_a_video_training_to_a_fresh_run_folder(tmp_path, capsys):
    # a long training in pieces on machines that keep nothing but the continuation folder
    first, second, states = tmp_path / "first", tmp_path / "second", tmp_path / "states"
    video = ("--stages", "data,ae,latents,video", "--variants", "fullres")
    assert run(first, *video, "--continuation", str(states)) == 0
    assert json.loads((states / "fullres" / "state.json").read_text())["step"] == 6
    capsys.readouterr()
    more = ("--set", "video_train.steps=9", "--ae", str(first / "ae"))
    keep = ("--continuation-keep", "model")  # what the states written from here on keep
    assert run(second, *video, "--continuation", str(states), *more, *keep) == 0
    assert f"resumed {states / 'fullres'} at step 6" in capsys.readouterr().err
    steps = [
        json.loads(line)["step"] for line in (second / "video" / "fullres" / "metrics.jsonl").open()
    ]
    first_steps = [
        json.loads(line)["step"] for line in (first / "video" / "fullres" / "metrics.jsonl").open()
    ]
    assert steps[: len(first_steps)] == first_steps and steps[-1] == 9  # continued, not restarted
    meta = json.loads((states / "fullres" / "state.json").read_text())
    assert (meta["step"], meta["keep"]) == (9, "model")
    # the state is further along than nothing, not than a finished run: a rerun trains no more
    assert run(second, *video, "--continuation", str(states), *more) == 0
    assert "video model: fullres" not in capsys.readouterr().out
    # a state past the steps asked for would score another model than the config names
    third = tmp_path / "third"
    assert run(third, *video, "--continuation", str(states), "--ae", str(first / "ae")) == 1
    assert "is at step 9, past video_train.steps=6" in capsys.readouterr().err


def test_a_stage_stopped_by_sigterm_keeps_its_seconds(tmp_path):
    """`timeout` stops a stage with SIGTERM: the stage ends with KeyboardInterrupt (not Python's
    immediate exit), its seconds are added to stages.json, and the handler before is restored."""
    before = signal.getsignal(signal.SIGTERM)
    clock = StageClock(tmp_path)
    with clock.stage("data"):
        time.sleep(0.05)
    with pytest.raises(KeyboardInterrupt, match="signal 15"), clock.stage("data"):
        time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
    assert 0.1 <= json.loads((tmp_path / "stages.json").read_text())["data"] < 5
    assert signal.getsignal(signal.SIGTERM) is before
