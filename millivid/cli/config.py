"""``millivid config``: the one place to read what a preset (and a variant) means.

Prints the experiment ``Config`` that ``--preset`` and ``--set`` give (what every training
command uses and every checkpoint's config.json records), with ``--variant`` the config that
``reproduce`` trains that variant with, and the evaluation and reproduction settings of the
preset. JSON, so other tools can read it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from millivid.cli.common import add_preset_flags, config_from_args
from millivid.presets import EVAL_PRESETS, REPRODUCE_PRESETS
from millivid.typed_config import to_dict
from millivid.variants import variant_config


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "config",
        help="print what a preset (and a variant) sets, as JSON",
        description="Print the experiment config of --preset with the --set overrides applied "
        "(as a checkpoint's config.json holds it), the evaluation and reproduction settings of "
        "the preset, and with --variant the method and config reproduce trains it with.",
    )
    add_preset_flags(parser)
    parser.add_argument("--variant", help="a reproduce variant, e.g. millivid-memory")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    out: dict = {}
    if args.variant:
        method, cfg = variant_config(cfg, args.variant)
        out = {"variant": args.variant, "method": method}
    out |= to_dict(cfg)
    out["evaluate"] = asdict(EVAL_PRESETS[args.preset])
    out["reproduce"] = asdict(REPRODUCE_PRESETS[args.preset])
    print(json.dumps(out, indent=2))
    return 0
