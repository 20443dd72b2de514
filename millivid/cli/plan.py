"""``millivid plan``: print or draw a method's rollout plan (see docs/PLANS.md).

``millivid plan --method M --tokens N0,N1,... --context C0,C1,... --target-tokens B --start A
--end E --json`` prints ``{"method": M, "steps": [step.to_json(), ...]}``; without ``--json`` a
readable table with totals. For ``fullres``: ``--context K`` alone and ``--target-tokens K*N0``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from millivid.cli.common import output_file, positive_int
from millivid.plan import METHODS, BudgetError, PlanConfig, make_plan
from millivid.plan.draw import animate_plan, draw_plan
from millivid.plan.summary import plan_table
from millivid.presets import PRESET_NAMES, load_preset


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "plan",
        help="print or draw a rollout plan",
        description="List the rollout steps of a method (which level/frames are context and "
        "target), as a table, JSON, a Fig. 10-style picture or an animation.",
    )
    parser.add_argument(
        "--method", required=True, choices=list(METHODS), help="rollout method (docs/PLANS.md)"
    )
    parser.add_argument(
        "--preset", choices=PRESET_NAMES, help="take budgets from a preset (flags override)"
    )
    parser.add_argument("--tokens", help="tokens per frame by level, finest first: 256,64,16,4")
    parser.add_argument("--context", help="context frames by level: 3,12,48,192 (fullres: K)")
    parser.add_argument("--target-tokens", type=positive_int, help="target tokens per step, B")
    parser.add_argument(
        "--memory-frames",
        type=int,
        default=0,
        help="frames retrieved by camera pose into every step (plan.memory_frames)",
    )
    parser.add_argument(
        "--memory-level", type=int, default=0, help="their level (plan.memory_level)"
    )
    parser.add_argument(
        "--memory-levels",
        help="their level per target level, finest first, in the same tokens: 0,1,2 "
        "(plan.memory_levels; default: --memory-level for every step)",
    )
    parser.add_argument(
        "--memory-pool",
        choices=["unheld", "older"],
        default="unheld",
        help="where they come from (plan.memory_pool; docs/PLANS.md)",
    )
    parser.add_argument("--start", type=int, required=True, help="known (ground-truth) frames")
    parser.add_argument("--end", type=int, required=True, help="generate frames [start, end)")
    parser.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    parser.add_argument(
        "--svg", type=output_file(".svg"), help="draw the plan (Fig. 10 style) to this SVG"
    )
    parser.add_argument(
        "--png", type=output_file(".png"), help="draw the plan (Fig. 10 style) to this PNG"
    )
    parser.add_argument("--gif", type=output_file(".gif"), help="animate the plan to this GIF")
    parser.add_argument(
        "--max-steps", type=positive_int, default=40, help="steps drawn at most (pictures only)"
    )
    parser.set_defaults(func=run)


def _ints(flag: str, text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise BudgetError(f"{flag} {text!r}: expected comma-separated integers") from None
    if not values:
        raise BudgetError(f"{flag} is empty: expected comma-separated integers")
    return values


def budget_from_args(args: argparse.Namespace) -> PlanConfig:
    """The budget from ``--preset`` and/or ``--tokens/--context/--target-tokens``, with the
    ``--memory-*`` settings."""
    memory = {
        "memory_frames": args.memory_frames,
        "memory_level": args.memory_level,
        "memory_pool": args.memory_pool,
        "memory_levels": _ints("--memory-levels", args.memory_levels) if args.memory_levels else (),
    }
    return replace(_token_budget(args), **memory)


def _token_budget(args: argparse.Namespace) -> PlanConfig:
    if args.preset is None and (args.tokens is None or args.context is None):
        raise BudgetError("give --tokens and --context (and --target-tokens), or --preset")
    budget = load_preset(args.preset).plan if args.preset else PlanConfig()
    if args.tokens is not None:
        budget = replace(budget, tokens=_ints("--tokens", args.tokens))
    method = METHODS[args.method]
    if method.frame_budget:
        if args.context is not None:
            values = _ints("--context", args.context)
            if len(values) != 1:
                raise BudgetError(f"--context {args.context!r}: {method.name} takes one number K")
            budget = replace(budget, fullres_context=values[0])
        k = budget.fullres_context
        expect = method.target_tokens(budget)
        if args.target_tokens is not None and args.target_tokens != expect:
            raise BudgetError(
                f"--target-tokens {args.target_tokens}: {method.name} with --context {k} and "
                f"N0 = {budget.tokens[0]} generates K*N0 = {expect} tokens per step"
            )
        return replace(budget, context=method.context_frames(budget), target_tokens=expect)
    if args.context is not None:
        budget = replace(budget, context=_ints("--context", args.context))
    if args.target_tokens is not None:
        budget = replace(budget, target_tokens=args.target_tokens)
    elif args.preset is None:
        raise BudgetError("give --target-tokens B (tokens generated per step)")
    return budget


def run(args: argparse.Namespace) -> int:
    budget = budget_from_args(args)
    steps = make_plan(args.method, budget, args.start, args.end)
    if args.json:
        print(json.dumps({"method": args.method, "steps": [s.to_json() for s in steps]}))
    else:
        print(plan_table(args.method, budget, args.start, args.end, steps))
    if args.svg or args.png or args.gif:
        for path in (args.svg, args.png):
            if path:
                draw_plan(args.method, budget, args.start, args.end, steps, path, args.max_steps)
        if args.gif:
            animate_plan(args.method, budget, args.start, args.end, steps, args.gif, args.max_steps)
    return 0
