"""Time to write the trivial baselines of a test set (what `reproduce`'s evaluate stage does
before scoring): every ground-truth video read once, each kind computed and written.

python benchmarks/bench_baselines.py --gt-dir RUN/gt --context 256 --workers 1 2 4
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from millivid.evaluate.baselines import BASELINES, write_baselines
from millivid.presets import EVAL_PRESETS


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gt-dir", type=Path, required=True, help="folder of ground-truth .npz")
    p.add_argument("--context", type=int, default=256, help="context frames")
    p.add_argument("--preset", default="mini", choices=sorted(EVAL_PRESETS))
    p.add_argument("--workers", type=int, nargs="+", default=[1, 4], help="thread counts")
    args = p.parse_args()
    videos = len(list(args.gt_dir.glob("*.npz")))
    for workers in args.workers:
        out = Path(tempfile.mkdtemp(prefix="baselines-"))
        try:
            t0 = time.perf_counter()
            write_baselines(
                args.gt_dir,
                out,
                BASELINES,
                args.context,
                EVAL_PRESETS[args.preset],
                subfolders=True,
                workers=workers,
            )
            seconds = time.perf_counter() - t0
        finally:
            shutil.rmtree(out)
        row = {"videos": videos, "kinds": len(BASELINES), "workers": workers, "seconds": seconds}
        print(json.dumps(row | {"videos_per_s": round(videos / seconds, 2)}))


if __name__ == "__main__":
    main()
