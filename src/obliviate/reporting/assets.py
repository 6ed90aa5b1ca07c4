"""The report page's stylesheet and its few lines of script (sorting, filtering),
inlined in the page.

The script ends by setting ``document.body.dataset.ready = "1"``: a test that loads the page in a
headless browser reads that flag to know the script ran to the end without an error.
"""

from __future__ import annotations

CSS = """
:root {
  --bg: #f5f6f8; --card: #ffffff; --ink: #1d2330; --muted: #667085; --line: #e4e7ec;
  --accent: #3867d6; --good: #1e9e5a; --good-bg: #e3f5ea; --bad: #c92a2a; --bad-bg: #fdecec;
  --warn-bg: #fff4db; --code-bg: #f2f4f7;
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
}
* { box-sizing: border-box; }
html { scroll-behavior: smooth; }
body {
  margin: 0; background: var(--bg); color: var(--ink); line-height: 1.45;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
header.top { background: #1d2330; color: #fff; padding: 22px 0 18px; }
header.top h1 { margin: 0; font-size: 24px; font-weight: 650; letter-spacing: -0.01em; }
header.top .sub { color: #b8c0cc; margin-top: 4px; font-size: 14px; }
nav.toc { background: #262d3d; position: sticky; top: 0; z-index: 5; }
nav.toc a { color: #d7dce4; text-decoration: none; display: inline-block; padding: 9px 12px; font-size: 13.5px; }
nav.toc a:hover { color: #fff; background: #313a4e; }
.wrap { max-width: 1320px; margin: 0 auto; padding: 0 24px; }
main.wrap { padding-top: 18px; padding-bottom: 48px; }
section.card {
  background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 18px 22px 20px; margin: 0 0 20px; box-shadow: 0 1px 2px rgba(16, 24, 40, 0.04);
}
section.card > h2 { margin: 0 0 4px; font-size: 19px; font-weight: 650; }
p.lead { margin: 0 0 14px; color: var(--muted); max-width: 980px; }
.note { background: var(--warn-bg); border-radius: 6px; padding: 8px 12px; margin: 8px 0 12px; font-size: 14px; }
.ok { color: var(--good); font-weight: 600; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { padding: 7px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { font-weight: 600; color: #344054; background: #f9fafb; white-space: nowrap; }
th[data-col] { cursor: pointer; user-select: none; }
th[data-col]::after { content: " ⇅"; color: #98a2b3; font-weight: 400; }
th[data-dir="asc"]::after { content: " ▲"; color: var(--accent); }
th[data-dir="desc"]::after { content: " ▼"; color: var(--accent); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.group td { background: #eef1f6; font-weight: 650; color: #344054; font-size: 13px; text-transform: uppercase; letter-spacing: 0.04em; }
.key { font-family: var(--mono); font-size: 13px; font-weight: 600; }
.desc { color: var(--muted); font-size: 12.5px; margin-top: 2px; max-width: 520px; }
td.best { background: var(--good-bg); box-shadow: inset 3px 0 0 var(--good); font-weight: 650; }
td.best .tag { color: var(--good); font-size: 11px; display: block; font-weight: 600; }
td.goal { background: #f3f0ff; font-weight: 600; }
.delta { color: var(--muted); font-size: 11.5px; display: block; font-weight: 400; }
.missing { display: inline-block; background: var(--bad-bg); color: var(--bad); border-radius: 4px;
  padding: 0 6px; font-size: 12px; font-weight: 600; cursor: help; }
.dir { display: inline-block; border-radius: 999px; padding: 1px 8px; font-size: 12px; background: #eef2ff; color: #3b4bb5; white-space: nowrap; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 6px; vertical-align: 0; }
.role { display: inline-block; font-size: 11.5px; border-radius: 4px; padding: 0 6px; font-weight: 600; }
.role-target { background: var(--bad-bg); color: var(--bad); }
.role-retain { background: var(--good-bg); color: var(--good); }
.role-unlearned { background: #eef2ff; color: #3b4bb5; }
svg.plot { max-width: 100%; height: auto; display: block; font-family: inherit; }
svg .plot-bg { fill: #fbfcfd; stroke: var(--line); }
svg .grid { stroke: #e9ecf1; stroke-width: 1; }
svg .guide { stroke: #98a2b3; stroke-dasharray: 4 4; stroke-width: 1.2; }
svg .guide.goal { stroke: var(--good); }
svg .guide-label { fill: #667085; font-size: 11.5px; }
svg .tick { fill: #667085; font-size: 11.5px; }
svg .axis-label { fill: #344054; font-size: 13px; font-weight: 600; }
svg .better { fill: var(--good); font-size: 13px; font-weight: 650; }
svg .legend { fill: #344054; font-size: 12px; }
svg .point-label { fill: #1d2330; font-size: 12.5px; font-weight: 600; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
svg .point { cursor: default; }
.plane-box { display: flex; gap: 24px; align-items: flex-start; flex-wrap: wrap; }
.plane-side { flex: 1 1 260px; font-size: 14px; color: #344054; }
.plane-side ul { padding-left: 18px; margin: 6px 0; }
.legend-row { margin: 4px 0; display: flex; align-items: center; gap: 6px; }
svg.marker { flex: 0 0 16px; }
.stack { display: grid; gap: 14px; }
.subcard { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.subcard h3 { margin: 0 0 2px; font-size: 15.5px; }
.meta { color: var(--muted); font-size: 13px; margin-bottom: 6px; }
.charts { display: flex; gap: 8px; }
.charts > svg.plot { flex: 1 1 0; min-width: 0; width: auto; max-width: 460px; }
.subcard.curves { display: flex; gap: 16px; align-items: flex-start; }
.subcard.curves .run-meta { flex: 0 0 210px; }
.subcard.curves .charts { flex: 1 1 auto; min-width: 0; }
table.items td.answer { min-width: 125px; max-width: 340px; font-size: 13.5px; }
table.items td.q { min-width: 220px; max-width: 400px; }
.qtext { font-weight: 550; }
.truth { color: var(--good); margin-top: 4px; font-size: 13.5px; }
.truth::before { content: "truth: "; color: var(--muted); font-size: 12px; }
.itemid { font-family: var(--mono); color: var(--muted); font-size: 12px; }
.text { white-space: pre-wrap; word-break: break-word; max-height: 9.5em; overflow: auto; display: block; }
.score { display: inline-block; margin-top: 4px; font-size: 11.5px; font-weight: 600; color: var(--muted); font-variant-numeric: tabular-nums; }
td.leak { background: var(--bad-bg); box-shadow: inset 3px 0 0 var(--bad); }
td.leak .score { color: var(--bad); }
td.leak .score::after { content: " · leaks"; }
tr.leaky td.count { color: var(--bad); font-weight: 700; }
#items.only-leaks tbody tr:not(.leaky) { display: none; }
.controls { display: flex; gap: 18px; align-items: center; margin: 4px 0 10px; font-size: 14px; flex-wrap: wrap; }
details.prov { border: 1px solid var(--line); border-radius: 8px; margin: 8px 0; }
details.prov > summary { cursor: pointer; padding: 10px 14px; font-weight: 600; }
details.prov > summary .meta { display: inline; margin-left: 8px; font-weight: 400; }
details.prov[open] > summary { border-bottom: 1px solid var(--line); }
.prov-body { padding: 10px 14px 14px; display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 14px; }
.prov-body h4 { margin: 4px 0 6px; font-size: 13.5px; color: #344054; }
.prov-body table { font-size: 13px; }
.prov-body td:first-child { color: var(--muted); white-space: nowrap; }
pre.json { background: var(--code-bg); border-radius: 6px; padding: 10px 12px; font: 12.5px/1.4 var(--mono);
  max-height: 360px; overflow: auto; margin: 0; white-space: pre-wrap; word-break: break-word; }
ul.missing-list { margin: 6px 0 12px; padding-left: 20px; }
ul.missing-list li { margin: 2px 0; }
ul.missing-list .why { color: var(--muted); }
footer { color: var(--muted); font-size: 12.5px; text-align: center; padding: 10px 0 30px; }
"""

JS = """
(function () {
  "use strict";
  function key(cell) {
    if (!cell) { return [2, ""]; }
    var v = cell.getAttribute("data-v");
    if (v !== null && v !== "" && !isNaN(parseFloat(v))) { return [0, parseFloat(v)]; }
    var t = cell.textContent.trim().toLowerCase();
    return (v === "" || t === "") ? [2, ""] : [1, t];
  }
  function compare(a, b, asc) {
    if (a[0] !== b[0]) { return a[0] - b[0]; }
    var d = a[1] < b[1] ? -1 : (a[1] > b[1] ? 1 : 0);
    return asc ? d : -d;
  }
  var tables = document.querySelectorAll("table.sortable");
  Array.prototype.forEach.call(tables, function (table) {
    var heads = table.querySelectorAll("thead th[data-col]");
    Array.prototype.forEach.call(heads, function (th) {
      th.addEventListener("click", function () {
        var col = Array.prototype.indexOf.call(th.parentNode.children, th);
        var asc = th.getAttribute("data-dir") !== "asc";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("data-dir"); });
        th.setAttribute("data-dir", asc ? "asc" : "desc");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r1, r2) { return compare(key(r1.cells[col]), key(r2.cells[col]), asc); });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  var only = document.getElementById("only-leaks");
  var items = document.getElementById("items");
  if (only && items) {
    only.addEventListener("change", function () { items.classList.toggle("only-leaks", only.checked); });
  }
  document.body.dataset.ready = "1";
})();
"""

__all__ = ["CSS", "JS"]
