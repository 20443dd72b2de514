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


# Every unit of the package, bottom to top: a module imports only units before its own (the
# shared pieces, then the stages in data-flow order, the evaluation, which takes videos and its
# EvalConfig from its caller, then the Config-aware layers and the commands).
LAYERS = (
    "atomic",
    "typed_config",
    "device",
    "seeds",
    "digest",
    "nn",
    "plots",
    "weights",
    "world",
    "data",
    "autoencoder",
    "plan",
    "diffusion",
    "model",
    "train",
    "evaluate",
    "presets",
    "jobs",
    "rollout",
    "pipeline",
    "variants",
    "reproduce",
    "cli",
    "__main__",
)
# Modules that orchestrate the others: each function reads as a list of named steps.
ORCHESTRATORS = ("reproduce.py", "pipeline.py", "rollout", "cli", "jobs", "train/trainer.py")
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """millivid module -> the millivid modules it imports (also inside functions)."""
    paths = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in paths:  # `from m import name`: the module m
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def layer(module: str) -> int:
    return LAYERS.index(module.split(".")[1])


def test_every_import_points_down_the_layers():
    graph = import_graph()
    units = {m.split(".")[1] for m in graph if m != "millivid"}
    assert units <= set(LAYERS), f"place {sorted(units - set(LAYERS))} in LAYERS"
    up = sorted(
        f"{m} -> {t}"
        for m, targets in graph.items()
        if m != "millivid"  # the package's lazy `millivid.load` (see millivid/__init__.py)
        for t in targets
        if t != "millivid" and layer(t) > layer(m)
    )
    assert not up, up


def test_no_import_cycle():
    graph = import_graph()
    done: set[str] = set()

    def cycle_from(module: str, path: list[str]) -> list[str] | None:
        for target in sorted(graph[module]):
            if target in path:
                return [*path[path.index(target) :], target]
            if target not in done and (cycle := cycle_from(target, [*path, target])):
                return cycle
        done.add(module)
        return None

    for module in sorted(graph):
        assert (cycle := cycle_from(module, [module])) is None, " -> ".join(cycle)


def test_orchestrator_functions_are_short():
    long = []
    for unit in ORCHESTRATORS:
        paths = sorted((ROOT / unit).rglob("*.py")) if (ROOT / unit).is_dir() else [ROOT / unit]
        for path in paths:
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > MAX_FUNCTION_LINES:
                        long.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} {lines} lines")
    assert not long, long
