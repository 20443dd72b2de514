"""``millivid report RUN``: one self-contained HTML page of a run's evaluation.

RUN folder layout read (every part optional except at least one of eval/ or gt/):

    RUN/eval/table.md              Table-1 markdown and split tables (``millivid evaluate --pred-dir ... --out RUN/eval``)
    RUN/eval/curves.png            Fig.-4 curves (same command)
    RUN/eval/paired.md             paired per-video differences from a reference method (same)
    RUN/eval/paired.png            the generated methods' differences per horizon, drawn (same)
    RUN/eval/results.json          horizons per method, "start" (first generated frame), "splits"
    RUN/gt/<video>.npz             ground-truth videos (key 'video'; 'poses' marks revisits)
    RUN/rollouts/<method>/<video>.npz   generated videos, same file names
    RUN/plans/<method>.png         each method's plan picture (``millivid plan --png``)

Videos are embedded as JPEG sprite sheets (frames tiled in a grid) drawn onto canvases, so the
page needs no codec, every frame is exact, and all methods of a test video share one slider and
one play button (synchronized playback). Under each slider a strip marks the context frames
(grey) and the generated frames that revisit the context (green; ``millivid.evaluate.splits``).
A click on a plan picture or on the curves shows it full size in the page.
"""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path

import numpy as np

from millivid.atomic import read_json, write_text_atomic
from millivid.evaluate.config import EvalConfig
from millivid.evaluate.runner import read_array, read_frames
from millivid.evaluate.splits import revisit_labels

SPRITE_COLS = 32


def sprite_sheet(frames: np.ndarray, cols: int = SPRITE_COLS, quality: int = 88) -> str:
    """uint8 [T, H, W, 3] -> base64 JPEG of the frames tiled row-major, ``cols`` per row."""
    from PIL import Image  # on first use, as pyplot (millivid.plots): 0.1 s

    t, h, w, _ = frames.shape
    cols = min(cols, t)
    rows = (t + cols - 1) // cols
    grid = np.zeros((rows * h, cols * w, 3), dtype=np.uint8)
    for i in range(t):
        r, c = divmod(i, cols)
        grid[r * h : (r + 1) * h, c * w : (c + 1) * w] = frames[i]
    buf = io.BytesIO()
    Image.fromarray(grid).save(buf, format="JPEG", quality=quality)
    return base64.b64encode(buf.getvalue()).decode()


def _png_b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _inline(text: str) -> str:
    """Escaped text with markdown ``**bold**`` and ``*italic*``."""
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))
    return re.sub(r"\*(.+?)\*", r"<i>\1</i>", text)


def markdown_table_to_html(md: str) -> str:
    """Render table.md (``**x**`` = best): pipe tables as HTML tables, ``## `` headings as h3 and
    other lines as paragraphs."""
    out, rows = [], []

    def flush() -> None:
        if not rows:
            return
        head, body = rows[0], rows[1:]
        th = "".join(f"<th>{html.escape(c)}</th>" for c in head)
        trs = []
        for r in body:
            cells = []
            for c in r:
                bold = c.startswith("**") and c.endswith("**")
                text = html.escape(c.strip("*"))
                cells.append(f"<td><b>{text}</b></td>" if bold else f"<td>{text}</td>")
            trs.append("<tr>" + "".join(cells) + "</tr>")
        out.append(f"<table class='metrics'><tr>{th}</tr>{''.join(trs)}</table>")
        rows.clear()

    for line in md.splitlines():
        line = line.strip()
        if line.startswith("|") and not set(line) <= set("|-: "):
            rows.append([c.strip() for c in line.strip("|").split("|")])
        elif not line.startswith("|"):
            flush()
            if line.startswith("#"):
                out.append(f"<h3>{html.escape(line.lstrip('#').strip())}</h3>")
            elif line:
                out.append(f"<p>{_inline(line)}</p>")
    flush()
    return "\n".join(out)


def frame_strip(t: int, start: int | None, revisit: np.ndarray | None) -> str:
    """A CSS gradient for a video of ``t`` frames: context [0, start) grey, generated revisit
    frames (revisit bool [T - start]) green, the other generated frames white."""
    if start is None:
        return "#fff"
    colours = ["#bbb"] * min(start, t) + ["#fff"] * max(t - start, 0)
    if revisit is not None:
        for i in np.flatnonzero(revisit[: max(t - start, 0)]):
            colours[start + i] = "#3a3"
    stops, first = [], 0
    for i in range(1, t + 1):
        if i == t or colours[i] != colours[first]:
            a, b = 100 * first / t, 100 * i / t
            stops.append(f"{colours[first]} {a:.2f}% {b:.2f}%")
            first = i
    return f"linear-gradient(to right, {', '.join(stops)})"


def _video_block(
    name: str,
    entries: list[tuple[str, np.ndarray]],
    start: int | None,
    revisit: np.ndarray | None = None,
) -> str:
    t, h, w, _ = entries[0][1].shape
    scale = max(1, 192 // w)
    canvases = []
    for label, frames in entries:
        n = min(len(frames), t)
        canvases.append(
            f"<figure><canvas width='{w * scale}' height='{h * scale}' data-frames='{n}' "
            f"data-w='{w}' data-h='{h}' data-cols='{min(SPRITE_COLS, n)}' "
            f"data-src='data:image/jpeg;base64,{sprite_sheet(frames[:n])}'></canvas>"
            f"<figcaption>{html.escape(label)}</figcaption></figure>"
        )
    start_attr = "" if start is None else f" data-start='{start}'"
    if revisit is not None:
        start_attr += f" data-revisit='{''.join('1' if r else '0' for r in revisit)}'"
    return (
        f"<section class='video' data-frames='{t}'{start_attr}><h3>{html.escape(name)}</h3>"
        f"<div class='row'>{''.join(canvases)}</div>"
        "<div class='controls'><button class='play'>▶ play</button><span class='track'>"
        f"<input type='range' class='slider' min='0' max='{t - 1}' value='0'>"
        f"<span class='strip' style='background:{frame_strip(t, start, revisit)}'></span></span>"
        "<span class='label'>frame 0</span></div></section>"
    )


SCRIPT = """
const blocks = [...document.querySelectorAll('section.video')];
let pending = 0;
function draw(cv, img, i) {
  const n = +cv.dataset.frames, w = +cv.dataset.w, h = +cv.dataset.h, cols = +cv.dataset.cols;
  const k = Math.min(i, n - 1), ctx = cv.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(img, (k % cols) * w, Math.floor(k / cols) * h, w, h, 0, 0, cv.width, cv.height);
}
for (const b of blocks) {
  const cvs = [...b.querySelectorAll('canvas')], slider = b.querySelector('.slider');
  const label = b.querySelector('.label'), btn = b.querySelector('.play');
  const start = b.dataset.start === undefined ? null : +b.dataset.start;
  const revisit = b.dataset.revisit || '';
  const imgs = cvs.map(cv => { const im = new Image(); pending++;
    im.onload = () => { draw(cv, im, +slider.value); if (--pending === 0) ready(); };
    im.src = cv.dataset.src; return im; });
  const show = i => { slider.value = i; cvs.forEach((cv, j) => imgs[j].complete && draw(cv, imgs[j], i));
    const kind = revisit[i - start] === '1' ? ', revisit' : revisit[i - start] === '0' ? ', novel' : '';
    label.textContent = 'frame ' + i + (start === null ? '' : (i < start ? ' (context)' : ' (generated ' + (i - start + 1) + kind + ')')); };
  slider.addEventListener('input', () => show(+slider.value));
  let timer = null;
  btn.addEventListener('click', () => {
    if (timer) { clearInterval(timer); timer = null; btn.textContent = '▶ play'; return; }
    btn.textContent = '❚❚ pause';
    timer = setInterval(() => show((+slider.value + 1) % (+slider.max + 1)), 50);
  });
  show(0);
}
function ready() { document.body.dataset.videosReady = String(blocks.length); }  // for tests
if (blocks.length === 0) ready();
// a plan or the curves full size over the page (URL #zoom-<key>); click, Esc or Back closes
const zooms = new Map([...document.querySelectorAll('a.zoom')].map(a =>
  [a.getAttribute('href'), a.querySelector('img').src]));
const box = document.getElementById('lightbox');
function showZoom() {
  const src = zooms.get(location.hash);
  box.hidden = !src;
  if (src) box.querySelector('img').src = src;
}
function closeZoom() {
  history.replaceState(null, '', location.pathname + location.search);
  showZoom();
}
box.addEventListener('click', closeZoom);
document.addEventListener('keydown', e => { if (e.key === 'Escape' && !box.hidden) closeZoom(); });
window.addEventListener('hashchange', showZoom);
showZoom();
"""

STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
table.metrics{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
table.metrics td,table.metrics th{border:1px solid #ccc;padding:3px 7px;text-align:right}
table.metrics td:first-child{text-align:left}
.row{display:flex;gap:10px;flex-wrap:wrap}figure{margin:0;text-align:center}
canvas{image-rendering:pixelated;border:1px solid #999;background:#000}
section.video{margin:14px 0;padding:8px;background:#fff;border:1px solid #ddd}
.controls{display:flex;gap:10px;align-items:center;margin-top:6px}.slider{width:360px;margin:0}
.track{display:inline-flex;flex-direction:column;gap:2px}
.strip{display:block;height:7px;width:360px;border:1px solid #999}
table.shares{margin-top:4px}summary{cursor:pointer;font-weight:600;margin:6px 0}
img.curves{max-width:100%}.plans{display:flex;gap:12px;flex-wrap:wrap}.plans img{max-height:260px}
a.zoom img{cursor:zoom-in}.hint{color:#666;font-size:12px}
#lightbox{position:fixed;inset:0;z-index:10;overflow:auto;background:rgba(0,0,0,.96);
  text-align:center;padding:16px;cursor:zoom-out}
#lightbox[hidden]{display:none}
#lightbox img{max-width:100%;background:#fff}#lightbox p{color:#ddd;margin:6px}
"""


def paired_to_html(md: str) -> str:
    """Render paired.md: per reference an intro line ("Difference from **X**"), then a
    ``### method − reference`` table per method; each reference is a collapsible block, the first
    one open."""
    blocks = [b for b in re.split(r"(?m)^(?=Difference from )", md) if b.strip()]
    out = []
    for i, block in enumerate(blocks):
        intro, *sections = block.split("\n### ")
        match = re.match(r"Difference from \*\*(.+?)\*\*", intro.strip())
        name = match.group(1) if match else "the reference"
        body = [f"<p>{html.escape(intro.strip().replace('**', ''))}</p>"]
        for section in sections:
            title, _, table = section.partition("\n")
            body.append(f"<h3>{html.escape(title.strip())}</h3>{markdown_table_to_html(table)}")
        summary = f"<summary>each method − {html.escape(name)}</summary>"
        out.append(f"<details{' open' if i == 0 else ''}>{summary}{''.join(body)}</details>")
    return "\n".join(out)


def shares_html(share: dict) -> str:
    """The test set's share of revisit and turn frames per horizon (results.json splits.share)."""
    names = list(share)
    if not names:
        return ""
    rows = []
    for column, label in (("revisit", "revisit frames"), ("turn", "turn frames")):
        if any(share[h].get(column) is not None for h in names):
            cells = [share[h].get(column) for h in names]
            rows.append([label] + ["–" if c is None else f"{100 * c:.1f} %" for c in cells])
    rows.append(["generated frames"] + [str(share[h]["frames"]) for h in names])
    th = "".join(f"<th>{html.escape(c)}</th>" for c in ["", *names])
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table class='metrics shares'><tr>{th}</tr>{trs}</table>"


def _eval_parts(ev: Path, results: dict) -> list[str]:
    """The tables (with the test set's revisit and turn shares), curves and paired differences
    of RUN/eval."""
    parts = []
    splits = results.get("splits") or {}
    if (ev / "table.md").is_file():
        parts.append("<h2>Metrics by horizon</h2>")
        if splits.get("share"):
            parts.append("<p>Test set: share of generated frames per horizon</p>")
            parts.append(shares_html(splits["share"]))
        parts.append(markdown_table_to_html((ev / "table.md").read_text()))
    if (ev / "curves.png").is_file():
        parts.append("<h2>Metrics vs frames since context</h2>")
        if splits.get("revisit_curve"):
            parts.append(
                "<p>Green bands: generated frames that revisit the context "
                "(darker = a larger share of the test videos).</p>"
            )
        parts.append(_zoomable(ev / "curves.png", "curves", cls="curves"))
    if (ev / "paired.md").is_file():
        parts.append("<h2>Paired differences</h2>")
        if (ev / "paired.png").is_file():
            parts.append(_zoomable(ev / "paired.png", "paired", cls="curves"))
        parts.append(paired_to_html((ev / "paired.md").read_text()))
    return parts


def _revisits(gt: Path, start: int | None, thresholds: dict) -> np.ndarray | None:
    """bool [T - start] revisit labels of a GT video (None without poses or start)."""
    poses = read_array(gt, "poses", required=False)
    if poses is None or not start or start > len(poses):
        return None
    cfg = EvalConfig()
    distance = thresholds.get("revisit_distance", cfg.revisit_distance)
    return revisit_labels(poses, start, distance, thresholds.get("revisit_yaw", cfg.revisit_yaw))


def _video_parts(run: Path, results: dict, max_videos: int, max_frames: int) -> list[str]:
    """Per test video: ground truth and every method side by side, with its revisit strip."""
    gt_files = sorted((run / "gt").glob("*.npz"))[:max_videos] if (run / "gt").is_dir() else []
    rollouts = run / "rollouts"
    methods = sorted(p for p in rollouts.iterdir() if p.is_dir()) if rollouts.is_dir() else []
    parts = ["<h2>Videos: ground truth and every method</h2>"] if gt_files else []
    start = results.get("start")
    thresholds = (results.get("splits") or {}).get("thresholds") or {}
    for g in gt_files:
        entries = [("ground truth", read_frames(g).numpy()[:max_frames])]
        for m in methods:
            if (m / g.name).is_file():
                entries.append((m.name, read_frames(m / g.name).numpy()[:max_frames]))
        parts.append(_video_block(g.stem, entries, start, _revisits(g, start, thresholds)))
    return parts


def _plan_parts(run: Path) -> list[str]:
    plans = sorted((run / "plans").glob("*.png")) if (run / "plans").is_dir() else []
    if not plans:
        return []
    figures = [
        f"<figure>{_zoomable(p, f'plan-{i}', cls='plan')}"
        f"<figcaption>{html.escape(p.stem)}</figcaption></figure>"
        for i, p in enumerate(plans)
    ]
    hint = "<p class='hint'>Click a plan to see it full size.</p>"
    return ["<h2>Plans</h2>", hint, "<div class='plans'>", *figures, "</div>"]


def _zoomable(png: Path, key: str, cls: str = "") -> str:
    """A PNG embedded as a link that shows it full size in the page's lightbox (URL
    ``#zoom-<key>``; SCRIPT), its thumbnail styled by ``cls``."""
    img = f"<img class='{cls}' src='data:image/png;base64,{_png_b64(png)}'>"
    return f"<a class='zoom' href='#zoom-{key}' title='click to see full size'>{img}</a>"


def build_report(run: Path, out: Path, max_videos: int = 8, max_frames: int = 768) -> Path:
    """Write the self-contained HTML page for ``run`` to ``out`` (atomically)."""
    run = Path(run)
    if not run.is_dir():
        raise FileNotFoundError(f"run folder {run} does not exist")
    results = {}
    if (run / "eval" / "results.json").is_file():
        results = read_json(run / "eval" / "results.json")
    parts = _eval_parts(run / "eval", results) + _plan_parts(run)
    parts += _video_parts(run, results, max_videos, max_frames)
    if not parts:
        raise FileNotFoundError(f"{run} has none of eval/table.md, eval/curves.png, gt/*.npz")
    title = f"<h1>millivid report: {html.escape(run.name)}</h1>"
    lightbox = "<div id='lightbox' hidden><p>click or Esc to close</p><img alt='full size'></div>"
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>millivid report</title>"
        f"<style>{STYLE}</style></head><body>{title}{''.join(parts)}{lightbox}<script>{SCRIPT}</script>"
        "</body></html>"
    )
    out = Path(out)
    write_text_atomic(out, page)
    return out
