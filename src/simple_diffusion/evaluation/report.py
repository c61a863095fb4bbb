"""The run's one-page report: a self-contained HTML file (images embedded) that opens in any
browser without a server."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from .metrics import LIKELIHOODS, distilled_line, format_table, likelihood_line, memorisation_line, rows_shown
from .tabular import lines as table_lines

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; } td, th { padding: 3px 10px; border-bottom: 1px solid #eee; }
th { text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; } pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
.broken { color: #b00; font-weight: bold; }
"""

# Marks the page once every image has loaded, and names any that did not: a reader sees a broken
# picture at once, and a test can check the page in a headless browser.
CHECK_IMAGES = """
window.addEventListener("load", function () {
  var broken = Array.prototype.filter.call(document.images, function (img) {
    return !(img.complete && img.naturalWidth > 0);
  });
  document.body.dataset.imagesOk = broken.length === 0 ? "true" : "false";
  broken.forEach(function (img) {
    var note = document.createElement("p");
    note.className = "broken";
    note.textContent = "image failed to load: " + img.alt;
    img.replaceWith(note);
  });
});
"""


def _image(path: Path, alt: str) -> str:
    if not path.exists():
        return f'<p class="broken">{html.escape(alt)}: not produced</p>'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _metrics_table(result: dict[str, Any]) -> str:
    rows = [("distance (" + result["distance_name"].replace("_", " ") + ")", result["distance"])]
    for key, label in (("floor", "floor: training data's distance"),
                       ("ratio", "ratio (1 = as close as the training data)"),
                       ("perfect_ratio", "ratio of exact samples at these sizes"),
                       ("energy", "energy distance"), ("energy_floor", "energy distance, training data"),
                       ("c2st", "C2ST accuracy (0.5 = indistinguishable)"),
                       ("c2st_floor", "C2ST accuracy, training data"),
                       ("train_seconds", "training time (s)"), ("sample_seconds", "sampling time (s)")):
        if key in result and (result[key] is not None or key == "ratio"):
            rows.append((label, result[key]))
    if "two_sample_skipped" in result:
        rows.append(("energy distance and C2ST", f"not computed: {result['two_sample_skipped']}"))
    body = "".join(f"<tr><th>{html.escape(k)}</th><td class='num'>"
                   f"{html.escape(v) if isinstance(v, str) else _number(v)}</td></tr>" for k, v in rows)
    columns = result["columns"]
    floor = "wasserstein_floor" in columns[0]
    head = "<tr><th>column</th><th>W1</th><th>KS</th>" + (
        "<th>W1 floor</th><th>KS floor</th><th>W1 ratio</th>" if floor else "") + "</tr>"
    per_column = "".join(
        f"<tr><td colspan='6'>{html.escape(c.strip())}</td></tr>" if isinstance(c, str) else
        f"<tr><th>{html.escape(c['column'])}</th><td class='num'>{c['wasserstein']:.4g}</td>"
        f"<td class='num'>{c['ks']:.4g}</td>" + (
            f"<td class='num'>{c['wasserstein_floor']:.4g}</td><td class='num'>{c['ks_floor']:.4g}</td>"
            f"<td class='num'>{_number(c['wasserstein_ratio'])}</td>" if floor else "")
        + "</tr>"
        for c in rows_shown(columns)
    )
    return (f'<table id="metrics">{body}</table><h3>Per column</h3>'
            f'<table id="columns">{head}{per_column}</table>')


def render_report(folder: Path, result: dict[str, Any], config_text: str, title: str) -> str:
    """The HTML of ``report.html`` for a run folder that holds loss.png and samples.png."""
    notes = []
    if "memorisation" in result:
        check = result["memorisation"]
        notes.append(f'<p id="memorisation" class="{"broken" if check["copied"] else "ok"}">'
                     f"{html.escape(memorisation_line(check))}</p>")
    for key in LIKELIHOODS:
        if key in result:
            notes.append(f'<p id="{key}">{html.escape(likelihood_line(result[key]))}</p>')
    if "distilled" in result:
        notes.append(f'<p id="distilled">{html.escape(distilled_line(result))}</p>')
    if "mode_masses" in result:
        notes.append(f"<pre>{html.escape(format_table(result).splitlines()[-1])}</pre>")
    if "table" in result:
        notes.append('<h3>The table: categories, missing cells, column pairs</h3><pre id="table">'
                     + html.escape("\n".join(table_lines(result["table"]))) + "</pre>")
    if "calibration" in result:
        from .calibration import lines as calibration_lines

        picture = (_image(folder / "calibration.png", "calibration: coverage and ranks")
                   if (folder / "calibration.png").exists() else "")
        notes.append("<h3>Calibration of the conditional model</h3>" + picture
                     + '<pre id="calibration">'
                     + html.escape("\n".join(calibration_lines(result["calibration"]))) + "</pre>")
    modes = "\n".join(notes)
    pairs = ""
    if (folder / "pairs.png").exists():
        pairs = ("<h3>Column pairs: the training rows' strongest associations, generated beside them</h3>\n"
                 + _image(folder / "pairs.png", "column pairs, training vs generated") + "\n")
    density = ""
    if (folder / "density.png").exists():
        density = ("<h2>The model's density against the truth</h2>\n"
                   + _image(folder / "density.png", "model density vs true density") + "\n")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}: simple-diffusion report</title>
<style>{STYLE}</style><script>{CHECK_IMAGES}</script></head>
<body>
<h1>{html.escape(title)}</h1>
<p>A diffusion model trained with simple-diffusion. The ratio compares the model's distance to
the truth with the training data's own: 1 means the model is as close as its training rows.
Distances shrink with the number of rows, so exact samples score the "ratio of exact samples"
below (under 1 when there are more samples than training rows); a model that copies its
training rows scores about 1, which the memorisation check tells apart.</p>
<h2>Metrics</h2>
{_metrics_table(result)}
{modes}
<h2>Generated against the target</h2>
{_image(folder / "samples.png", "generated vs target")}
{pairs}{density}<h2>Training loss</h2>
{_image(folder / "loss.png", "training loss")}
<h2>Configuration</h2>
<pre>{html.escape(config_text)}</pre>
<h2>Raw metrics</h2>
<pre>{html.escape(json.dumps(result, indent=2))}</pre>
</body></html>
"""
    return page
