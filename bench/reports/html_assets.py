"""The leaderboard site's inline stylesheet and script: small, no external resource, so a page opens from disk.

The script does two things: sorting a table by a column (click its header; again to reverse; missing values
stay last) and hiding columns (the checkboxes above a table). The chance-corrected view is a CSS toggle
(``:has``), so it works without the script. Neither loads anything.
"""

from __future__ import annotations

STYLE = """
:root{--ink:#1d2430;--muted:#5f6b7a;--line:#d8dee6;--band:#f4f6f9;--bar:#c9d6e6;--ci:#6d8fb8;--pt:#1d3557;
--flag:#b5400f;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink)}
body{margin:0 auto;max-width:1400px;padding:1rem 1.5rem 3rem;line-height:1.4}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.2rem;margin:2rem 0 .4rem;border-bottom:1px solid var(--line)}
h3{font-size:1rem;margin:1.2rem 0 .3rem}p,li{max-width:75rem}.muted,.detail{color:var(--muted)}
.detail{display:block;font-size:.78rem;max-width:22rem}
nav a{margin-right:1rem}a{color:#1f5fa8}
.toolbar{display:flex;gap:1.5rem;align-items:center;flex-wrap:wrap;margin:.5rem 0;font-size:.9rem}
.scroll{overflow-x:auto;border:1px solid var(--line);border-radius:4px}
table{border-collapse:collapse;font-size:.85rem;width:100%}
th,td{padding:.3rem .5rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{background:var(--band);position:sticky;top:0;font-weight:600;min-width:4.5rem}
tbody tr:hover{background:#fafbfd}
th:first-child,td:first-child{position:sticky;left:0;background:#fff;z-index:1;min-width:9rem}
thead th:first-child{background:var(--band);z-index:2}
th button.sort{all:unset;cursor:pointer}th button.sort:focus-visible{outline:2px solid var(--ci)}
th[aria-sort=ascending] button.sort::after{content:" \\25B2"}
th[aria-sort=descending] button.sort::after{content:" \\25BC"}
td.num{white-space:nowrap;font-variant-numeric:tabular-nums}
.bar{display:block;position:relative;height:6px;min-width:4rem;background:var(--band);margin-top:3px;border-radius:3px}
.bar .ci{position:absolute;top:1px;height:4px;background:var(--bar);border-left:1px solid var(--ci);
border-right:1px solid var(--ci)}.bar .pt{position:absolute;top:-1px;width:2px;height:8px;background:var(--pt)}
.bar .one{position:absolute;top:-2px;width:1px;height:10px;background:var(--muted)}
.flag{color:var(--flag);cursor:help;text-decoration:none;margin-left:.2rem}
details.columns{font-size:.85rem;margin:.3rem 0}details.columns label{margin-right:.8rem;white-space:nowrap}
.view-cc{display:none}body:has(#chance-corrected:checked) .view-cc{display:block}
body:has(#chance-corrected:checked) .view-raw{display:none}
.legend{font-size:.85rem}.legend dt{float:left;clear:left;width:6.5rem;color:var(--flag)}.legend dd{margin-left:7rem}
.notes{font-size:.85rem;color:var(--muted)}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid var(--line)}
figcaption{font-size:.85rem;color:var(--muted)}
dl.card{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;font-size:.9rem}
dl.card dt{font-weight:600}dl.card dd{margin:0;overflow-wrap:anywhere}
code{font-size:.85em}
"""

SCRIPT = """
(function () {
  "use strict";
  function key(cell) {
    var v = cell ? cell.getAttribute("data-v") : null;
    if (v === null || v === "") { return null; }
    var n = Number(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  function sortBy(th) {
    var table = th.closest("table"), body = table.tBodies[0];
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[index]), y = key(b.cells[index]);
      if (x === null) { return y === null ? 0 : 1; }
      if (y === null) { return -1; }
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      var order = x < y ? -1 : x > y ? 1 : 0;
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  function showColumn(box) {
    var table = document.getElementById(box.getAttribute("data-table"));
    var index = Number(box.getAttribute("data-col"));
    Array.prototype.forEach.call(table.rows, function (row) {
      if (row.cells[index]) { row.cells[index].hidden = !box.checked; }
    });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("th button.sort");
    if (button) { sortBy(button.parentNode); }
  });
  document.addEventListener("change", function (event) {
    if (event.target.matches("input.col-toggle")) { showColumn(event.target); }
  });
  Array.prototype.forEach.call(document.querySelectorAll("input.col-toggle"), showColumn);
})();
"""
