"""scripts/mini_gpu.sh (what runs on the lent GPU) works phase by phase: a dry run on the CPU
with the tiny preset, so a broken script is caught here and not in scarce device time."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_phase_runs_and_leaves_what_comes_back(tmp_path):
    env = {
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
        "TRAIN_STEPS": "4",
        "WORKERS": "0",
        "STEPS": "2",
        "VARIANTS": "millivid-cc fullres",
        "AE_STEPS": "3",
    }
    back = {}
    for phase in ("data", "train", "export", "rollout", "eval", "ae"):
        out = tmp_path / "out" / phase  # the device tool empties OUT before every call
        env["OUT"] = str(out)
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "mini_gpu.sh"), phase],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, (phase, done.stderr[-2000:])
        assert len(list(out.iterdir())) <= 8, phase  # a device call returns at most 8 files
        back.update({f.name: f for f in out.iterdir()})
    for name in (
        "millivid-cc.safetensors",
        "fullres.safetensors",
        "meta.tar.gz",
        "eval.tar.gz",
        "ae_recon_hierarchical.png",
        "ae_recon_all-levels.png",
        "ae_recon_cascaded.png",
    ):
        assert back[name].stat().st_size > 0, name
    table = (tmp_path / "run" / "eval" / "table.md").read_text()
    assert "millivid-cc" in table and "fullres" in table
    quality = back["ae_quality.txt"].read_text()
    assert quality.count("psnr") >= 3, quality[-2000:]  # hierarchical, cascaded, all-levels
