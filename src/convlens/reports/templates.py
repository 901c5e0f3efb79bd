"""The page around a report: one HTML skeleton and its inline CSS, as Python strings.

Kept as strings (``string.Template``, ``$name`` placeholders: CSS braces need no
escaping) so the package needs no data files and a report needs no network, fonts or
scripts: open the file anywhere, print it, mail it.
"""

from __future__ import annotations

from string import Template

CSS = """
:root { --ink: #1d232a; --muted: #5b6570; --line: #d9dee3; --train: #1f77b4;
        --test: #d62728; --good: #2ca02c; --bg: #ffffff; --soft: #f4f6f8; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 34px 0 10px; padding-bottom: 4px;
     border-bottom: 1px solid var(--line); }
.sub { color: var(--muted); margin: 0 0 18px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.card { background: var(--soft); border-radius: 8px; padding: 10px 16px; min-width: 150px; }
.card b { display: block; font-size: 22px; }
.card span { color: var(--muted); font-size: 13px; }
.verdict { border-left: 5px solid var(--test); background: #fdf1f1; padding: 10px 14px;
           border-radius: 4px; }
.verdict.fine { border-color: var(--good); background: #eff8ef; }
.spot { border-left: 5px solid var(--good); background: #eff8ef; padding: 10px 14px;
        border-radius: 4px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.spot-row td { background: #eff8ef; font-weight: 600; }
tr.bad td { color: var(--test); }
.bar { background: var(--soft); width: 220px; height: 12px; border-radius: 6px; }
.bar i { display: block; height: 12px; border-radius: 6px; background: var(--train); }
pre { background: var(--soft); padding: 12px; border-radius: 6px; overflow-x: auto;
      font-size: 12.5px; line-height: 1.35; }
img.figure { max-width: 100%; height: auto; border: 1px solid var(--line);
             border-radius: 4px; }
.grid { display: flex; flex-wrap: wrap; gap: 14px; }
figure.mistake { margin: 0; width: 190px; background: var(--soft); border-radius: 6px;
                 padding: 8px; font-size: 12.5px; }
figure.mistake img { display: block; margin: 0 auto 6px; image-rendering: pixelated; }
figure.mistake .truth { color: var(--good); font-weight: 600; }
figure.mistake ol { margin: 2px 0 0; padding-left: 20px; }
figure.mistake li:first-child { color: var(--test); font-weight: 600; }
.note { color: var(--muted); font-size: 13px; }
footer { color: var(--muted); font-size: 12px; margin-top: 40px; }
"""

PAGE = Template(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>$css</style>
</head>
<body>
<main>
<h1>$title</h1>
<p class="sub">$subtitle</p>
$body
<footer>Written by convlens $version on $date from $source. Self-contained: figures are
embedded, nothing is loaded from the network.</footer>
</main>
</body>
</html>
"""
)
