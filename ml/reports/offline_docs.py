"""Great Expectations Data Docs that render offline.

GX renders its pages to load Bootstrap, jQuery, bootstrap-table, Font Awesome and Vega from
CDNs, and fills the index page's tables in the browser from JavaScript data: offline (or
behind a proxy) the index is blank. `make_data_docs_offline` rewrites every page of a built
site in place:

- every `<link>` / `<script>` / `<img>` that points to another host is removed;
- each `bootstrapTable(...)` call is replaced by the table it would have drawn, rendered
  here from the same `columns` and `data` (GX's own cell HTML, each row linked to its page);
- the remaining inline scripts and `onclick` handlers (jQuery helpers) are removed;
- one inline stylesheet stands in for Bootstrap's layout and Font Awesome's status icons.

It is idempotent: a page already rewritten is left as it is.
"""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path

MARKER = "<!-- offline: rewritten by ml/reports/offline_docs.py -->"

_REMOTE_LINK = re.compile(r"<link\b[^>]*\bhref=\"(?:https?:)?//[^\"]*\"[^>]*>\s*", re.I)
_REMOTE_SCRIPT = re.compile(r"<script\b[^>]*\bsrc=\"(?:https?:)?//[^\"]*\"[^>]*>\s*</script>\s*", re.I)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>\s*", re.S | re.I)
_BOOTSTRAP_TABLE = re.compile(r"\$\('#([\w-]+)'\)\.bootstrapTable\(")
# The logo GX loads from its own host (with the data context's id in the query): a tracker.
_REMOTE_IMAGE = re.compile(r"<img\b[^>]*\bsrc=\"(?:https?:)?//[^\"]*\"[^>]*>", re.I)
_ONCLICK = re.compile(r"\s+onclick=\"[^\"]*\"", re.I)

OFFLINE_CSS = """<style>
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #1f2933;
       background: #fff; margin: 0; line-height: 1.4; }
.container, .container-fluid { max-width: 80rem; margin: 0 auto; padding: 1rem; }
nav, .navbar { padding: 0.5rem 1rem; border-bottom: 1px solid #d9e2ec; }
.navbar img { height: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.9rem; width: 100%; }
th, td { border: 1px solid #d9e2ec; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f0f4f8; }
.card { border: 1px solid #d9e2ec; border-radius: 6px; margin: 0.8rem 0; padding: 0.5rem; }
.tab-pane { margin-bottom: 1.5rem; }
.nav-tabs, .nav { list-style: none; padding: 0; display: flex; gap: 1rem; }
.btn, button { display: none; }
.cooltip .top { display: none; }
.text-success { color: #2f9e44; } .text-danger { color: #c92a2a; } .text-info { color: #1c64d1; }
.fas::before, .fa::before { font-style: normal; font-weight: bold; }
.fa-check-circle::before { content: "\\2714"; }
.fa-times::before, .fa-times-circle::before, .fa-exclamation-triangle::before { content: "\\2718"; }
.fa-comment::before { content: "\\2139"; }
.col-md-2, .col-md-10, .col-12 { display: block; }
</style>"""


def _balanced(text: str, start: int) -> int:
    """The index just past the bracket closing the one at `start` (quotes respected)."""
    pairs = {"[": "]", "{": "}", "(": ")"}
    stack, index, quote = [], start, None
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char in pairs:
            stack.append(pairs[char])
        elif stack and char == stack[-1]:
            stack.pop()
            if not stack:
                return index + 1
        index += 1
    raise ValueError(f"unbalanced bracket from position {start}")


def _literal_after(script: str, name: str):
    """The Python-readable literal after `name:` in a GX bootstrapTable call (columns, data)."""
    match = re.search(rf"\b{name}\s*:\s*\[", script)
    if match is None:
        raise ValueError(f"no `{name}:` list in the script")
    start = match.end() - 1
    return ast.literal_eval(script[start:_balanced(script, start)])


def table_rows_html(columns: list[dict], data: list[dict]) -> str:
    """The `<thead>` and `<tbody>` bootstrap-table would have drawn. Cell values are GX's own
    HTML (as bootstrap-table inserts them); as the whole row was clickable, every cell without
    a link of its own links to the row's page."""
    head = "".join(f"<th>{html.escape(str(column.get('title', column['field'])))}</th>" for column in columns)
    body = []
    for row in data:
        cells = [str(row.get(column["field"], "")) for column in columns]
        link = row.get("_table_row_link_path")
        if link:
            href = html.escape(link, quote=True)
            cells = [cell if "<a " in cell else f'<a href="{href}">{cell or "open"}</a>' for cell in cells]
        body.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody>"


def make_page_offline(page: str) -> str:
    """One Data Docs page, rewritten to need nothing but the files beside it."""
    if MARKER in page:
        return page
    tables: dict[str, str] = {}
    for script in _INLINE_SCRIPT.findall(page):
        for call in _BOOTSTRAP_TABLE.finditer(script):
            tables[call.group(1)] = table_rows_html(_literal_after(script[call.end():], "columns"),
                                                    _literal_after(script[call.end():], "data"))
    page = _REMOTE_LINK.sub("", page)
    page = _REMOTE_SCRIPT.sub("", page)
    page = _REMOTE_IMAGE.sub("", page)
    page = _INLINE_SCRIPT.sub("", page)
    page = _ONCLICK.sub("", page)
    for table_id, rows in tables.items():
        opening = re.search(rf"<table\b[^>]*\bid=\"{re.escape(table_id)}\"[^>]*>", page)
        if opening is None:
            raise ValueError(f"Data Docs page has a bootstrapTable call for #{table_id} but no such table")
        close = page.index("</table>", opening.end())
        page = page[: opening.end()] + rows + page[close:]
    head_end = page.lower().find("</head>")
    if head_end < 0:
        raise ValueError("Data Docs page has no </head>: not a page GX rendered")
    return page[:head_end] + MARKER + "\n" + OFFLINE_CSS + "\n" + page[head_end:]


def make_data_docs_offline(docs_dir: Path) -> int:
    """Rewrite every HTML page of the site under `docs_dir`; return how many were rewritten."""
    rewritten = 0
    for path in sorted(Path(docs_dir).rglob("*.html")):
        page = path.read_text(encoding="utf-8")
        offline = make_page_offline(page)
        if offline != page:
            path.write_text(offline, encoding="utf-8")
            rewritten += 1
    return rewritten
