"""scripts/mini_gpu.sh (the mini reproduction on a GPU) works phase by phase: a dry run on the
CPU with the tiny preset, so a broken script is caught here and not on the GPU."""

import csv
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


SCRIPT = str(ROOT / "scripts" / "mini_gpu.sh")


def dry_run_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The script's environment for a CPU dry run with the tiny preset, in ``tmp_path``."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        "RUN": str(tmp_path / "run"),
        "OUT": str(tmp_path / "out"),
        "PRESET": "tiny",
        "DEVICE": "cpu",
        "AE": "",
        "TRAIN_VIDEOS": "4",
        "TEST_VIDEOS": "2",
        "WORKERS": "0",
        "VARIANTS": "millivid-cc fullres",
        **overrides,
    }


@pytest.fixture(scope="module")
def data_run(tmp_path_factory) -> Path:
    """A run folder after the `data` phase (world data, autoencoder, latents), made once: the
    tests below that start from it copy it instead of rendering and training it again."""
    base = tmp_path_factory.mktemp("data_run")
    run_phase(dry_run_env(base), "data")
    return base / "run"


def with_data(data_run: Path, run: Path) -> None:
    """``run`` as a copy of ``data_run`` (its `data` phase done, not yet marked in done/)."""
    shutil.copytree(data_run, run, symlinks=True)


def run_phase(env: dict[str, str], phase: str) -> None:
    """One phase of the script, which must succeed (its stderr's end in the failure)."""
    done = subprocess.run(["bash", SCRIPT, phase], cwd=ROOT, env=env, capture_output=True)
    assert done.returncode == 0, (phase, done.stderr[-2000:])


def test_every_phase_runs_and_leaves_what_comes_back(tmp_path):
    env = dry_run_env(
        tmp_path,
        TRAIN_STEPS="4",
        STEPS="2",
        AE_STEPS="3",
        AE_VARIANTS="cascaded c32-lr2",  # side by side; each with its own overrides
        AE_COOLDOWN="0.5",
        SETS="ae.channels=8",  # every stage: the tiny autoencoder at C = 8 (preset: 4)
        SWEEP="noise0:--sample-context-noise 0.25 --sample-steps 2 --sample-eta 1",
    )
    back = {}
    # `shipped`: a given checkpoint (here the run's own millivid-cc) beside the variants
    env["SHIPPED"] = str(tmp_path / "run" / "video" / "millivid-cc" / "checkpoint")
    env["SHIPPED_VARIANT"] = "millivid-cc"
    for phase in ("data", "train", "export", "rollout", "shipped", "eval", "sweep", "ae"):
        out = tmp_path / "out" / phase  # a fresh OUT per phase: what that phase leaves in it
        env["OUT"] = str(out)
        done = subprocess.run(
            ["bash", SCRIPT, phase],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, (phase, done.stderr[-2000:])
        assert len(list(out.iterdir())) <= 8, phase  # a few archives per phase, not loose files
        back.update({f.name: f for f in out.iterdir()})
        if phase == "eval":  # the baselines' per-frame scores, kept beside their rollouts
            kept_scores = {
                f: f.stat().st_mtime_ns
                for f in (tmp_path / "run" / "rollouts").glob("*/*.scores.json")
            }
    for name in (
        "millivid-cc.safetensors",
        "fullres.safetensors",
        "meta.tar.gz",
        "eval.tar.gz",
        "per_frame.csv.gz",
        "ae_recon_cascaded.png",
        "ae_recon_c32-lr2.png",
    ):
        assert back[name].stat().st_size > 0, name
    table = (tmp_path / "run" / "eval" / "table.md").read_text()
    # the per-frame rows to keep, gzipped: the run's CSV, byte for byte
    kept = gzip.decompress(back["per_frame.csv.gz"].read_bytes())
    assert kept == (tmp_path / "run" / "eval" / "per_frame.csv").read_bytes()
    # the shipped checkpoint's rows: the same model, the same rollout noise, the same frames
    rows = list(csv.DictReader(io.StringIO(kept.decode())))
    scores = {
        m: [r["psnr"] for r in rows if r["method"] == m]
        for m in ("millivid-cc", "millivid-shipped")
    }
    assert scores["millivid-shipped"] and scores["millivid-shipped"] == scores["millivid-cc"]
    assert "millivid-cc" in table and "fullres" in table
    # the return contrast of every rollout set, paired with the first variant's
    consistency = json.loads((tmp_path / "run" / "eval" / "self_consistency.json").read_text())
    assert set(consistency["paired"]) == {"millivid-cc"}
    # the sweep: the same models rolled out again at the setting asked for, into RUN-<name>
    with tarfile.open(back["sweep_noise0.tar.gz"]) as tar:  # tables first, then the contrast
        assert {"eval/per_frame.csv", "eval/table.md", "eval/self_consistency.json"} <= set(
            tar.getnames()
        )
    assert not list((tmp_path / "out" / "sweep").glob("*.tmp"))
    swept = tmp_path / "run-noise0"
    assert "millivid-cc" in (swept / "eval" / "table.md").read_text()
    assert (swept / "eval" / "self_consistency.md").read_text().startswith("returns within")
    state = json.loads((swept / "stages.json").read_text())
    assert {"rollout/millivid-cc", "rollout/fullres"} <= set(state)
    # ... beside RUN's trivial baselines, linked and not scored again
    for b in ("autoencoder", "context-mean", "copy-last", "nearest-pose", "nearest-pose-ae"):
        link = swept / "rollouts" / b
        assert link.resolve() == (tmp_path / "run" / "rollouts" / b).resolve(), b
        assert link.is_symlink(), b
        assert any(f.parent.name == b for f in kept_scores), b
    assert "context-mean" in (swept / "eval" / "table.md").read_text()
    assert {f: f.stat().st_mtime_ns for f in kept_scores} == kept_scores
    quality = back["ae_quality.txt"].read_text()
    assert quality.count("psnr") >= 2, quality[-2000:]  # cascaded, c32-lr2
    assert "== cascaded" in quality and "== c32-lr2" in quality
    saved = json.loads((tmp_path / "run" / "ae-c32-lr2" / "checkpoint" / "config.json").read_text())
    assert saved["ae"]["channels"] == 32 and saved["ae_train"]["lr"] == 2e-3  # both overrides
    assert saved["ae_train"]["cooldown"] == 0.5
    for stage in ("ae", "video/millivid-cc", "video/fullres"):  # SETS reached every stage
        saved = json.loads((tmp_path / "run" / stage / "checkpoint" / "config.json").read_text())
        assert saved["ae"]["channels"] == 8, stage


def test_all_runs_the_phases_not_done_and_stops_within_its_limit(tmp_path, data_run):
    """`all` runs data → eval, skipping the phases marked done; a call whose LIMIT runs out exits
    75 with nothing marked, and the next call goes on to the end."""
    env = dry_run_env(tmp_path, TRAIN_STEPS="4", STEPS="2")
    with_data(data_run, tmp_path / "run")  # the data phase still runs (it finds its work done)

    def call(**extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", SCRIPT, "all"], cwd=ROOT, env={**env, **extra}, capture_output=True, text=True
        )

    done = tmp_path / "run" / "done"
    stopped = call(LIMIT="16")  # 1 s for the data phase
    assert stopped.returncode == 75 and "call again" in stopped.stderr, stopped.stderr[-2000:]
    assert not any(done.iterdir())
    finished = call()
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert sorted(p.name for p in done.iterdir()) == sorted(
        ["data", "train", "export", "rollout", "eval"]
    )
    assert "millivid-cc" in (tmp_path / "run" / "eval" / "table.md").read_text()
    made = (tmp_path / "run" / "stages.json").stat().st_mtime_ns
    again = call()
    assert again.returncode == 0 and "all phases done" in again.stdout
    assert (tmp_path / "run" / "stages.json").stat().st_mtime_ns == made  # nothing ran again
    (done / "export").unlink()
    exported = tmp_path / "out" / "fullres.safetensors"
    exported.unlink()
    only = call(PHASES="export")  # the phases asked for, and no other
    assert only.returncode == 0 and (done / "export").exists(), only.stderr[-2000:]
    assert exported.exists() and (tmp_path / "run" / "stages.json").stat().st_mtime_ns == made
    wrong = call(PHASES="eval rolout")
    assert wrong.returncode == 2 and "unknown phase rolout" in wrong.stderr
    # a later call of a run in pieces that lands on a machine without the run starts nothing
    fresh = tmp_path / "fresh"
    lost = call(CONTINUING="1", RUN=str(fresh))
    assert lost.returncode == 3 and str(fresh) in lost.stderr, lost.stderr[-2000:]
    assert not fresh.exists()
    assert call(CONTINUING="1").returncode == 0  # the run is there: it goes on


def test_curve_trains_on_to_each_point_and_scores_it_there(tmp_path, data_run):
    """`curve` with POINTS="2 4": the models scored at step 2 and at step 4, each into its own
    sweep folder, and the curve drawn; a call whose LIMIT runs out exits 75 and the next goes on.
    STATE: the trainings also write their continuation states there, keeping STATE_KEEP."""
    states = {"STATE": str(tmp_path / "states"), "STATE_KEEP": "model"}
    env = dry_run_env(tmp_path, STEPS="2", POINTS="2 4", **states)
    with_data(data_run, tmp_path / "run")

    def call(**extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", SCRIPT, "curve"],
            cwd=ROOT,
            env={**env, **extra},
            capture_output=True,
            text=True,
        )

    stopped = call(LIMIT="16")
    assert stopped.returncode == 75 and "call again" in stopped.stderr, stopped.stderr[-2000:]
    finished = call()
    assert finished.returncode == 0, finished.stderr[-2000:]
    done = sorted(p.name for p in (tmp_path / "run" / "done").iterdir())
    assert done == ["data", "sweep-s2", "sweep-s4", "train-s2", "train-s4"]
    for n in (2, 4):
        assert "millivid-cc" in (tmp_path / f"run-s{n}" / "eval" / "table.md").read_text()
        # the trivial baselines made and scored once, in RUN, for both points
        assert (tmp_path / f"run-s{n}" / "rollouts" / "context-mean").is_symlink()
    assert list((tmp_path / "run" / "rollouts" / "context-mean").glob("*.scores.json"))
    log = (tmp_path / "run" / "video" / "fullres" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(log[-1])["step"] == 4
    for v in ("millivid-cc", "fullres"):
        meta = json.loads((tmp_path / "states" / v / "state.json").read_text())
        assert (meta["step"], meta["keep"]) == (4, "model")
    curve = (tmp_path / "out" / "steps_curve.md").read_text()
    assert "millivid-cc − fullres" in curve and "| 2 |" in curve and "| 4 |" in curve
    assert "long horizon" in curve  # the tiny preset's horizons (frames 33-96), not the mini's
    assert (tmp_path / "out" / "steps_curve.png").stat().st_size > 0
    assert json.loads((tmp_path / "out" / "steps_curve.json").read_text())["points"]


def test_ddp_gpus_trains_each_variant_on_that_many_processes(tmp_path, data_run):
    """DDP_GPUS=2: `train` runs each variant under torchrun (gloo on the CPU), batch per GPU."""
    env = dry_run_env(tmp_path, TRAIN_STEPS="4", DDP_GPUS="2", BATCH="2", VARIANTS="fullres")
    with_data(data_run, tmp_path / "run")
    run_phase(env, "train")
    run = tmp_path / "run" / "video" / "fullres"
    log = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    assert log[-1]["step"] == 4 and {r["processes"] for r in log} == {2}
    assert (
        json.loads((run / "checkpoint" / "config.json").read_text())["video_train"]["batch_size"]
        == 2
    )


def test_a_stopped_train_call_keeps_the_step_it_reached(tmp_path, data_run):
    """`timeout` stops a `train` call: the script waits for its trainers to save the step they
    reached (SIGTERM), so the next call resumes there and not at the last periodic checkpoint."""
    import signal
    import time

    from millivid.train.checkpoint import load_trainer_state

    # TRAIN_STEPS never reached, nor the periodic checkpoint (every 1,000 steps)
    env = dry_run_env(tmp_path, TRAIN_STEPS="100000", PARALLEL="1")
    with_data(data_run, tmp_path / "run")
    # like GNU timeout: its own process group, SIGTERM to the whole group
    train = subprocess.Popen(["bash", SCRIPT, "train"], cwd=ROOT, env=env, start_new_session=True)
    logs = [tmp_path / "run" / f"train_{v}.log" for v in ("millivid-cc", "fullres")]
    deadline = time.monotonic() + 120
    while not all(p.exists() and "train:" in p.read_text() for p in logs):
        assert time.monotonic() < deadline and train.poll() is None, "training never started"
        time.sleep(0.5)
    time.sleep(2)
    os.killpg(train.pid, signal.SIGTERM)
    assert train.wait(timeout=120) != 0  # stopped, not finished
    for v in ("millivid-cc", "fullres"):  # saved when the script returned, not after
        assert load_trainer_state(tmp_path / "run" / "video" / v)["step"] > 0, v


def test_a_stopped_ae_call_is_resumed_by_the_next(tmp_path, data_run):
    """`timeout` stops an `ae` call: its trainer saves the step it reached and the quality check
    waits for the call that finishes; the next call resumes (the first call's log lines stay)."""
    import signal
    import time

    from millivid.train.checkpoint import load_trainer_state

    env = dry_run_env(tmp_path, AE_STEPS="100000", AE_VARIANTS="c32-lr2")
    with_data(data_run, tmp_path / "run")
    run = tmp_path / "run" / "ae-c32-lr2"

    def stopped_call() -> int:
        metrics = run / "metrics.jsonl"
        before = len(metrics.read_text().splitlines()) if metrics.exists() else 0
        call = subprocess.Popen(["bash", SCRIPT, "ae"], cwd=ROOT, env=env, start_new_session=True)
        deadline = time.monotonic() + 120
        while not (metrics.exists() and len(metrics.read_text().splitlines()) > before + 1):
            assert time.monotonic() < deadline and call.poll() is None, "training never went on"
            time.sleep(0.5)
        os.killpg(call.pid, signal.SIGTERM)
        assert call.wait(timeout=120) != 0  # stopped, not finished
        return load_trainer_state(run)["step"]

    first = stopped_call()
    second = stopped_call()
    assert 0 < first < second < 100000
    log = (tmp_path / "run" / "ae_train_c32-lr2.log").read_text()
    assert f"resumed {run} at step {first}" in log
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(10, steps[-1] + 1, 10))  # one run, continued
    assert not (tmp_path / "out" / "ae_quality.txt").exists()  # left to the finishing call


def test_test_from_shares_another_runs_test_set(tmp_path, data_run):
    """TEST_FROM=RUN: a second run on other training trajectories renders only its training
    videos and reads the first run's test set."""
    second = dry_run_env(
        tmp_path,
        VARIANTS="fullres",
        RUN=str(tmp_path / "revisit"),
        TEST_FROM=str(tmp_path / "run"),
        SETS="world.train_actions=revisit",
    )
    with_data(data_run, tmp_path / "run")  # the first run's data phase
    run_phase(second, "data")
    test = tmp_path / "revisit" / "data" / "test"
    assert test.is_symlink() and test.resolve() == (tmp_path / "run" / "data" / "test").resolve()
    assert sorted(p.name for p in (tmp_path / "revisit" / "gt").glob("*.npz")) == [
        "000000.npz",
        "000001.npz",
    ]
    meta = json.loads((tmp_path / "revisit" / "data" / "train" / "dataset.json").read_text())
    assert json.dumps(meta).count('"train_actions": "revisit"') == 1


def test_data_from_shares_another_runs_data_and_latents(tmp_path, data_run):
    """DATA_FROM=RUN: a run of other variants on the same videos renders and encodes nothing,
    reads the first run's data and latents, and trains on them."""
    second = dry_run_env(
        tmp_path,
        VARIANTS="millivid-cc",
        RUN=str(tmp_path / "other"),
        DATA_FROM=str(tmp_path / "run"),
        TRAIN_STEPS="2",
    )
    with_data(data_run, tmp_path / "run")  # the first run's data phase
    made = (tmp_path / "run" / "data" / "train" / "dataset.json").stat().st_mtime_ns
    for phase in ("data", "train"):
        run_phase(second, phase)
    other = tmp_path / "other"
    for d in ("data", "latents"):
        assert (other / d).is_symlink() and (other / d).resolve() == (tmp_path / "run" / d)
    assert (tmp_path / "run" / "data" / "train" / "dataset.json").stat().st_mtime_ns == made
    assert sorted(p.name for p in (other / "gt").glob("*.npz")) == ["000000.npz", "000001.npz"]
    assert (other / "video" / "millivid-cc" / "checkpoint" / "model.safetensors").is_file()
