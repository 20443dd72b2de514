"""``millivid reproduce``: the whole Table-1 pipeline as resumable stages.

    world data -> autoencoder -> latent cache -> video models -> test-set rollouts -> evaluation
    -> report

Every stage writes into the run folder and is skipped once its output is complete, so the same
command can be re-run after an interruption (Ctrl-C, a crash, or the ``timeout`` or job limit of
a machine that caps how long a command may run): the trainers save on SIGTERM and resume, the
dataset and latent writers skip finished files, rollouts resume from their saved latent store. Layout of RUN::

    data/train/, data/test/      world videos (millivid data make; labels and depth: test only)
    ae/                          autoencoder run (or --ae: an existing one, e.g. checkpoints/mini/ae)
    latents/                     latent cache of data/train
    ae-cascaded/, latents-cascaded/   the same for the cascaded autoencoder (variant ``cascaded``)
    ae-pooled/, latents-pooled/       the same for the hierarchical one, coarse levels pooled
    video/<variant>/             one video-model run per method variant
    gt/ -> data/test/0000        ground truth, the layout millivid evaluate/report read
    rollouts/<variant>/<name>.npz
    rollouts/<baseline>/<name>.npz   the trivial baselines, and autoencoder/ and nearest-pose-ae/
                                 (through the run's autoencoder; millivid.evaluate.baselines)
    plans/<variant>.png
    eval/                        per_frame.csv, table.md, curves.png/svg, results.json
    report.html
    stages.json                  wall seconds spent in each stage (summed over calls)

Each stage is a function of a ``Run`` (what the stages share), listed in ``STAGE_FUNCTIONS``
in the order the stages run.

The variants a run trains are named in ``millivid.variants``; the default set is
docs/RESULTS.md's Table 1.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from millivid.atomic import read_json, write_json_atomic
from millivid.data.latent_cache import LatentCache
from millivid.data.make import make_dataset
from millivid.device import resolve_device
from millivid.evaluate.baselines import BASELINES, write_baselines
from millivid.evaluate.outputs import rollout_grid, write_set_outputs
from millivid.evaluate.report import build_report
from millivid.evaluate.runner import evaluate_sets
from millivid.evaluate.suite import MetricSuite, parse_metrics
from millivid.jobs.autoencoder import (
    derive_pooled,
    encode_dataset,
    frame_reconstructor,
    load_autoencoder,
    train_autoencoder,
)
from millivid.jobs.video_task import VideoTask
from millivid.pipeline import check_autoencoder
from millivid.plan import make_plan
from millivid.plan.draw import draw_plan
from millivid.presets import EVAL_PRESETS, Config, ReproduceConfig
from millivid.rollout.folder import rollout_folder
from millivid.rollout.generate import load_video_model, video_checkpoint_config
from millivid.train import train
from millivid.train.checkpoint import CheckpointError, load_trainer_state
from millivid.train.continuation import state_to_resume
from millivid.train.signals import sigterm_as_interrupt
from millivid.variants import VARIANTS, variant_config


class StageClock:
    """Accumulates wall seconds per stage in RUN/stages.json (written after every stage, also one
    that a SIGTERM stops; the file is re-read just before, so runs of other variants beside this
    one keep their seconds)."""

    def __init__(self, run: Path) -> None:
        self.path = run / "stages.json"

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        begin = time.perf_counter()
        try:
            with sigterm_as_interrupt():
                yield
        finally:
            if int(os.environ.get("RANK", 0)) == 0:  # under torchrun: rank 0 keeps the time
                self._add(name, time.perf_counter() - begin)

    def _add(self, name: str, seconds: float) -> None:
        spent = read_json(self.path) if self.path.exists() else {}
        spent[name] = spent.get(name, 0.0) + seconds
        write_json_atomic(self.path, spent)


def _trained(run: Path, steps: int) -> bool:
    try:
        return int(load_trainer_state(run)["step"]) >= steps
    except (FileNotFoundError, ValueError, KeyError):
        return False


def _ae_finished(run: Path, steps: int) -> bool:
    """Trained to ``steps`` and calibrated: a run stopped between its last step and the
    calibration is not finished (resuming it only calibrates it)."""
    if not _trained(run, steps):
        return False
    try:
        load_autoencoder(run)
    except CheckpointError:
        return False
    return True


def _fresh(out: Path, inputs: Path) -> bool:
    """``out`` exists and is newer than every file under ``inputs``."""
    if not out.exists():
        return False
    newest = max((p.stat().st_mtime for p in inputs.rglob("*") if p.is_file()), default=0.0)
    return out.stat().st_mtime >= newest


def _has_checkpoint(run: Path) -> bool:
    return (run / "checkpoint" / "model.safetensors").exists()


@dataclass(frozen=True)
class Run:
    """What the stages of one ``reproduce`` call share."""

    path: Path  # the run folder
    cfg: Config
    rcfg: ReproduceConfig
    device: str  # resolved: "cpu", "cuda", ...
    ae_runs: dict[str, Path]  # autoencoder kind -> its run folder
    latent_dirs: dict[str, Path]  # autoencoder kind -> its latent cache of data/train
    given_ae: Path | None  # --ae: the hierarchical autoencoder, trained elsewhere
    clock: StageClock
    log: Callable[[str], None]
    states: Path | None = None  # --continuation: <states>/<variant> per video model
    states_keep: str = "all"  # --continuation-keep: what each of those states keeps

    @property
    def train_dir(self) -> Path:
        """The training videos (data/train)."""
        return self.path / "data" / "train"

    @property
    def test_dir(self) -> Path:
        """The test videos (data/test)."""
        return self.path / "data" / "test"


def make_run(
    path: Path,
    cfg: Config,
    rcfg: ReproduceConfig,
    *,
    ae: Path | None,
    device: str,
    log: Callable[[str], None],
) -> Run:
    """The ``Run`` of ``reproduce``'s arguments: one autoencoder run and latent cache per
    autoencoder kind the variants need (the hierarchical one always), without states."""
    dev = str(resolve_device(device))
    kinds = sorted(
        {VARIANTS[v].autoencoder for v in rcfg.variants if v in VARIANTS} | {"hierarchical"}
    )
    suffix = {k: "" if k == "hierarchical" else f"-{k}" for k in kinds}
    ae_runs = {k: path / f"ae{suffix[k]}" for k in kinds}
    if ae is not None:
        ae_runs["hierarchical"] = ae
    latent_dirs = {k: path / f"latents{suffix[k]}" for k in kinds}
    return Run(path, cfg, rcfg, dev, ae_runs, latent_dirs, ae, StageClock(path), log)


def stage_data(run: Run) -> None:
    """World videos for training and test; ``gt`` links to the test videos. Only the test
    videos carry the per-pixel labels and depth (the evaluation reads them; training does not):
    training files are half the bytes (a folder begun with them goes on with them)."""
    rcfg = run.rcfg
    for out, n, test in (
        (run.train_dir, rcfg.train_videos, False),
        (run.test_dir, rcfg.test_videos, True),
    ):
        meta = read_json(out / "dataset.json") if (out / "dataset.json").exists() else {}
        if meta.get("complete"):
            continue
        make_dataset(
            out,
            run.cfg.world,
            n,
            test=test,
            device=run.device,
            side_outputs=test or "labels" in meta.get("keys", ()),
            workers=rcfg.workers,
            preset=run.cfg.preset,
            compress=rcfg.compress,
            shard_size=max(n, 1),
        )
    gt = run.path / "gt"
    if not gt.exists():
        gt.symlink_to(Path("data") / "test" / "0000", target_is_directory=True)


def stage_ae(run: Run) -> None:
    """Every autoencoder the variants need, each timed on its own (``ae/<kind>``)."""
    cfg = run.cfg
    for kind, ae_run in run.ae_runs.items():
        if kind == "hierarchical" and run.given_ae is not None:
            run.log(f"autoencoder: using {run.given_ae}")
            continue
        if kind == "pooled":  # the hierarchical one (trained above), its coarse levels pooled
            if not _has_checkpoint(ae_run):
                with run.clock.stage("ae/pooled"):
                    derive_pooled(run.ae_runs["hierarchical"], run.train_dir, ae_run, run.device)
            continue
        if _ae_finished(ae_run, cfg.ae_train.steps):
            continue
        kcfg = replace(cfg, ae=replace(cfg.ae, kind=kind))
        with run.clock.stage(f"ae/{kind}"):
            resume = _has_checkpoint(ae_run)  # else: a fresh start over any partial log
            train_autoencoder(kcfg, run.train_dir, ae_run, resume, run.device, overwrite=not resume)


def stage_latents(run: Run) -> None:
    """The latent cache of the training videos under every autoencoder."""
    for kind, ae_run in run.ae_runs.items():
        encode_dataset(ae_run, run.train_dir, run.latent_dirs[kind], run.device, run.rcfg.workers)


def stage_video(run: Run) -> None:
    """One video model per variant, on its autoencoder's latents, timed per variant. With
    ``run.states`` each model also writes its continuation state to ``states/<variant>`` and
    goes on from the one there when that is further along than its run folder (pieces of one
    training on machines that keep nothing)."""
    for variant in run.rcfg.variants:
        method, vcfg = variant_config(run.cfg, variant)
        cache = LatentCache(run.latent_dirs[vcfg.ae.kind])
        out = run.path / "video" / variant
        state = run.states / variant if run.states is not None else None
        resume_from = state_to_resume(state, vcfg.video_train.steps) if state else None
        if _trained(out, vcfg.video_train.steps):
            continue
        run.log(f"video model: {variant}")
        saved = video_checkpoint_config(method, vcfg, cache.autoencoder_digest)
        task = VideoTask(vcfg, method, cache)
        with run.clock.stage(f"video/{variant}"):
            resume = _has_checkpoint(out) and resume_from is None
            train(
                task,
                vcfg.video_train,
                out,
                config=saved,
                resume=resume,
                resume_from=resume_from,
                continuation=state,
                continuation_keep=run.states_keep,
                device=run.device,
                overwrite=not resume and resume_from is None,
            )


def stage_rollout(run: Run) -> None:
    """Every variant rolled out over the test videos (after its plan is drawn), timed per
    variant; an autoencoder other than the one the model's latents came from is refused."""
    rcfg = run.rcfg
    end = rcfg.context + rcfg.frames
    for variant in rcfg.variants:
        video_run, ae_run = run.path / "video" / variant, run.ae_runs[VARIANTS[variant].autoencoder]
        model, vcfg, method = load_video_model(video_run, run.device)
        autoenc = load_autoencoder(ae_run, run.device)
        check_autoencoder(video_run, ae_run, autoenc)
        plan_png = run.path / "plans" / f"{variant}.png"
        if not plan_png.exists():
            plan_png.parent.mkdir(parents=True, exist_ok=True)
            plan = make_plan(method, vcfg.plan, rcfg.context, end)
            draw_plan(method, vcfg.plan, rcfg.context, end, plan, plan_png, max_steps=24)
        with run.clock.stage(f"rollout/{variant}"):
            rollout_folder(
                run.path / "gt",
                run.path / "rollouts" / variant,
                model,
                vcfg,
                method,
                autoenc,
                context=rcfg.context,
                length=rcfg.frames,
                batch=rcfg.rollout_batch,
                steps=rcfg.sample_steps,
                guidance=run.cfg.diffusion.guidance,  # this run's, not the checkpoint's
                context_noise=rcfg.sample_context_noise,  # None: the checkpoint's
                eta=rcfg.sample_eta,  # None: the checkpoint's
                compile=rcfg.compile,
                device=run.device,
                max_videos=rcfg.test_videos,
            )


# through the run's autoencoder: the ceiling of a latent model, and the fair recall oracle
RUN_AE_BASELINES = ("autoencoder", "nearest-pose-ae")


def stage_evaluate(run: Run) -> None:
    """The trivial baselines' rollouts (also through the run's hierarchical autoencoder), then
    the metrics of every rollout set into eval/ (again only when a rollout is newer than
    eval/results.json)."""
    rollouts, gt, context = run.path / "rollouts", run.path / "gt", run.rcfg.context
    ecfg = EVAL_PRESETS[run.cfg.preset]
    names = sorted(p.name for p in gt.glob("*.npz"))
    todo = [
        k
        for k in BASELINES + RUN_AE_BASELINES  # every table carries the trivial baselines
        if sorted(p.name for p in (rollouts / k).glob("*.npz")) != names
    ]
    reconstruct = None
    if any(k in RUN_AE_BASELINES for k in todo):
        reconstruct = frame_reconstructor(run.ae_runs["hierarchical"], run.device)
    if todo:
        write_baselines(gt, rollouts, todo, context, ecfg, reconstruct, subfolders=True)
    missing = [v for v in run.rcfg.variants if not any((rollouts / v).glob("*.npz"))]
    if missing:  # a variant whose rollout stage failed (its error said why) is not in the table
        run.log(
            f"warning: no rollouts of {', '.join(missing)} in {rollouts}: the table leaves "
            "them out (run the rollout stage for them again)"
        )
    if _fresh(run.path / "eval" / "results.json", rollouts):
        return
    res = evaluate_sets(
        rollouts,
        gt,
        context,
        parse_metrics(run.rcfg.metrics),
        ecfg,
        suite=MetricSuite(ecfg, run.device),  # on the run's device (the probe is most of the work)
        overlap=True,  # its own rollouts, context + frames long; the test videos may run on
        cache=True,  # sets scored before (the baselines a sweep links) are not scored again
    )
    write_set_outputs(
        res, run.path / "eval", ecfg.horizon_names, start=context, horizon_ends=ecfg.horizon_ends
    )
    if missing:
        with (run.path / "eval" / "table.md").open("a") as table:
            table.write(f"\nNot in this table (no rollouts): {', '.join(missing)}.\n")


def stage_report(run: Run) -> None:
    """eval/grid.png and report.html (again only when eval/ is newer than the report)."""
    report, rcfg = run.path / "report.html", run.rcfg
    if _fresh(report, run.path / "eval"):
        return
    # before the report: eval/ must stay older
    grid = run.path / "eval" / "grid.png"
    rollout_grid(run.path / "gt", run.path / "rollouts", rcfg.context, rcfg.frames, grid)
    build_report(run.path, report, max_frames=rcfg.context + rcfg.frames)


STAGE_FUNCTIONS: dict[str, Callable[[Run], None]] = {
    "data": stage_data,
    "ae": stage_ae,
    "latents": stage_latents,
    "video": stage_video,
    "rollout": stage_rollout,
    "evaluate": stage_evaluate,
    "report": stage_report,
}
STAGES = tuple(STAGE_FUNCTIONS)  # in the order they run

# stages that time each variant themselves (video/<variant>, rollout/<variant>)
TIMED_PER_VARIANT = ("video", "rollout")


def reproduce(
    run: Path,
    cfg: Config,
    rcfg: ReproduceConfig,
    *,
    ae: Path | None = None,
    device: str = "auto",
    log: Callable[[str], None] = print,
    states: Path | None = None,
    states_keep: str = "all",
) -> Path:
    """Run (or continue) every stage into ``run``; returns the report path. ``states``: the
    video models' continuation states (``stage_video``), keeping ``states_keep``."""
    run.mkdir(parents=True, exist_ok=True)
    shared = make_run(run, cfg, rcfg, ae=ae, device=device, log=log)
    shared = replace(shared, states=states, states_keep=states_keep)
    wanted = rcfg.stages or STAGES
    for name in wanted:
        if name not in STAGES:
            raise ValueError(f"unknown stage {name!r} (known: {', '.join(STAGES)})")
    for name in wanted:
        log(f"== stage {name}")
        if name in TIMED_PER_VARIANT:
            STAGE_FUNCTIONS[name](shared)
        else:
            with shared.clock.stage(name):
                STAGE_FUNCTIONS[name](shared)
    return run / "report.html"
