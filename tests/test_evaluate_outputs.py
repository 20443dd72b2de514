"""The evaluation's written outputs: which curve and paired-difference figures exist, and that
no curve is hidden."""

from __future__ import annotations

from pathlib import Path


def test_set_outputs_list_only_written_curves(tmp_path):
    """No curve data -> no curves.png/svg, and none reported as written."""
    from millivid.evaluate.outputs import write_set_outputs
    from millivid.evaluate.runner import SetResults

    out = write_set_outputs(SetResults(metrics=("psnr",)), tmp_path / "empty", ("short",))
    assert out["curves"] == []
    assert not list((tmp_path / "empty").glob("curves.*"))
    for key in ("csv", "table", "json"):
        assert Path(out[key]).is_file(), key
    res = SetResults(metrics=("psnr",), curves={"m": {"psnr": [30.0, 29.0, 28.5]}})
    out = write_set_outputs(res, tmp_path / "full", ("short",))
    assert [Path(p).name for p in out["curves"]] == ["curves.png", "curves.svg"]
    assert all(Path(p).is_file() for p in out["curves"])


def test_set_outputs_plot_the_paired_differences_of_generated_methods(tmp_path):
    """paired.png/svg: the generated methods' differences from the first reference, per horizon
    (labelled by its frames); none when only trivial baselines are paired with it."""
    from millivid.evaluate.outputs import horizon_labels, plot_paired, write_set_outputs
    from millivid.evaluate.runner import SetResults

    assert horizon_labels(("a", "b", "c"), (1, 64, 768)) == {"a": "1", "b": "2–64", "c": "65–768"}
    assert horizon_labels(("short",), None) == {"short": "short"}
    cell = {"mean": 0.2, "ci95": 0.1, "wins": 0.6, "videos": 4}
    paired = {"copy-last": {"short": {"psnr": cell}}, "b": {"short": {"psnr": cell}}}
    res = SetResults(
        metrics=("psnr",),
        curves={"a": {"psnr": [30.0, 29.0]}, "b": {"psnr": [29.0, 28.0]}},
        references=("a",),
        paired=paired,
        paired_splits={"a": {"all": paired}},
    )
    out = write_set_outputs(res, tmp_path / "o", ("short",), horizon_ends=(64,))
    names = [Path(p).name for p in out["curves"]]
    assert names == ["curves.png", "curves.svg", "paired.png", "paired.svg"]
    assert (tmp_path / "o" / "paired.png").stat().st_size > 5_000
    del paired["b"]
    assert plot_paired(paired, "a", ("psnr",), {"short": "1–64"}, tmp_path / "none") == []
    assert not list(tmp_path.glob("none.*"))
    # evaluated again into the same folder: the figures and tables it no longer has are gone
    write_set_outputs(res, tmp_path / "o", ("short",))  # paired.md, but no generated method
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "curves.png",
        "curves.svg",
        "paired.md",
        "per_frame.csv",
        "results.json",
        "table.md",
    ]
    write_set_outputs(SetResults(metrics=("psnr",)), tmp_path / "o", ("short",))
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "per_frame.csv",
        "results.json",
        "table.md",
    ]


def test_curves_give_every_method_its_own_line_beyond_ten(tmp_path, monkeypatch):
    """Eleven methods (ten baselines and variants plus one): no two lines look alike."""
    import matplotlib.pyplot as plt

    from millivid.evaluate.outputs import plot_curves

    curves = {f"m{i}": {"psnr": [float(i), float(i) + 1]} for i in range(11)}
    kept = []
    monkeypatch.setattr(plt, "close", kept.append)  # keep the figure to inspect its lines
    plot_curves(curves, ["psnr"], tmp_path / "curves")
    lines = kept[0].axes[0].get_lines()
    looks = {(line.get_color(), line.get_linestyle()) for line in lines}
    assert len(lines) == 11 and len(looks) == 11


def test_curves_legend_hides_no_curve(tmp_path, monkeypatch):
    """Every panel in use (three metrics, three columns): the legend of many methods goes below
    the panels, overlapping none; with a spare panel it fills that panel."""
    import matplotlib.pyplot as plt

    from millivid.evaluate.outputs import plot_curves

    curves = {
        f"m{i}": {m: [float(i)] * 4 for m in ("psnr", "ssim", "sharpness", "probe_acc")}
        for i in range(11)
    }
    kept = []
    monkeypatch.setattr(plt, "close", kept.append)
    plot_curves(curves, ["psnr", "ssim", "sharpness"], tmp_path / "full")
    fig = kept[-1]
    renderer = fig.canvas.get_renderer()
    (legend,) = fig.legends
    box = legend.get_window_extent(renderer)
    panels = [ax.get_window_extent(renderer) for ax in fig.axes]
    assert not any(box.overlaps(p) for p in panels)
    plot_curves(curves, ["psnr", "ssim", "sharpness", "probe_acc"], tmp_path / "spare")
    fig = kept[-1]
    assert not fig.legends and fig.axes[len(fig.axes) - 2].get_legend() is not None  # 1st spare
