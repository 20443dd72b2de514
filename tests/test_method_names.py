"""A method is one object (docs/ARCHITECTURE.md): code outside ``millivid/plan/methods.py`` asks
the ``Method`` (its context source, budget, levels, autoencoder) and never decides by comparing
a method's name to a string."""

import ast
from pathlib import Path

from millivid.plan import METHODS

REPO = Path(__file__).resolve().parents[1]
OWNER = REPO / "millivid" / "plan" / "methods.py"
# names that are also something else: the package and the dataset format, the autoencoder kind;
# a comparison against them counts only when it is about a method
ALSO_OTHER_THINGS = {"millivid", "cascaded"}
PREFIX_CALLS = ("startswith", "endswith", "removeprefix", "removesuffix")


def strings(node: ast.AST) -> set[str]:
    """The string constants of ``node``: itself, or the items of a tuple/list/set literal."""
    items = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
    return {i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)}


def compared_names(node: ast.AST) -> set[str]:
    """Method names ``node`` compares against: ``x == "fullres"``, ``x in ("framepack", ...)``,
    ``case "upscale":`` or ``x.startswith("framepack")``."""
    if isinstance(node, ast.Compare):
        found = set().union(*(strings(o) for o in (node.left, *node.comparators)))
    elif isinstance(node, ast.MatchValue):
        found = strings(node.value)
    elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) in PREFIX_CALLS:
        found = set().union(*(strings(a) for a in node.args))
    else:
        return set()
    found &= set(METHODS)
    about_a_method = "method" in ast.unparse(node).lower()
    return {n for n in found if about_a_method or n not in ALSO_OTHER_THINGS}


def method_name_comparisons(paths) -> list[tuple[Path, int, str]]:
    """(file, line, method name) of every comparison against a method name in ``paths``."""
    return [
        (path, node.lineno, name)
        for path in paths
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        for name in sorted(compared_names(node))
    ]


def test_no_code_outside_the_method_registry_compares_a_method_name():
    paths = sorted((REPO / "millivid").rglob("*.py")) + sorted((REPO / "benchmarks").rglob("*.py"))
    hits = [
        f"{path.relative_to(REPO)}:{line} {name}"
        for path, line, name in method_name_comparisons(p for p in paths if p != OWNER)
    ]
    assert not hits, f"ask the Method (millivid/plan/methods.py) instead: {hits}"


def test_the_scan_finds_each_way_of_comparing_a_name(tmp_path):
    source = tmp_path / "comparisons.py"
    source.write_text(
        'if method == "fullres": pass\n'
        'if args.method in ("framepack", "upscale"): pass\n'
        'if variant.method != "cascaded": pass\n'
        'match method:\n    case "mirrored-framepack": pass\n'
        'if name.startswith("hierarchical-framepack"): pass\n'
        # not about a method: a dataset format, an autoencoder kind, another string
        'if self.format == "millivid" or cfg.kind == "cascaded" or x == "levels": pass\n'
    )
    found = sorted((line, name) for _, line, name in method_name_comparisons([source]))
    assert found == [
        (1, "fullres"),
        (2, "framepack"),
        (2, "upscale"),
        (3, "cascaded"),
        (5, "mirrored-framepack"),
        (6, "hierarchical-framepack"),
    ]
