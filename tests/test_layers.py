"""The layers point one way (docs/ARCHITECTURE.md): the packages that the experiment Config is
made of never import the Config-aware layers above them, nor the rollout, evaluation or CLI."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "millivid"
ABOVE = (
    "millivid.presets",
    "millivid.jobs",
    "millivid.rollout",
    "millivid.evaluate",
    "millivid.cli",
    "millivid.reproduce",
    "millivid.pipeline",
    "millivid.variants",
)


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports (also inside functions)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
    return out


@pytest.mark.parametrize(
    "package", ["plan", "diffusion", "model", "autoencoder", "train", "world", "data"]
)
def test_lower_packages_import_nothing_above_them(package):
    bad = {
        f"{p.relative_to(ROOT.parent)}: {m}"
        for p in sorted((ROOT / package).rglob("*.py"))
        for m in imported_modules(p)
        if m.startswith(ABOVE)
    }
    assert not bad, sorted(bad)


def test_the_plan_is_pure_python():
    bad = {
        str(p.relative_to(ROOT.parent))
        for p in (ROOT / "plan").glob("*.py")
        if p.name != "draw.py" and "torch" in {m.split(".")[0] for m in imported_modules(p)}
    }
    assert not bad, sorted(bad)


def test_the_evaluation_takes_configs_from_its_caller_not_the_presets():
    """evaluate/ sits below millivid.presets: the CLI and reproduce resolve a preset name and
    hand the evaluation its EvalConfig / WorldConfig."""
    bad = {
        str(p.relative_to(ROOT.parent))
        for p in sorted((ROOT / "evaluate").rglob("*.py"))
        if any(m.startswith("millivid.presets") for m in imported_modules(p))
    }
    assert not bad, sorted(bad)
