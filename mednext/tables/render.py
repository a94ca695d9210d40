"""Write a table as CSV and Markdown (with its caption), or as CSV, Markdown, LaTeX and HTML, atomically."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from mednext.atomic import atomic_write_csv, atomic_write_text


def write_table(table: pd.DataFrame, out_dir: str | Path, stem: str, title: str, caption: str) -> list[Path]:
    """Write ``stem.csv`` (tidy, pandas-readable) and ``stem.md`` (title, table, caption) into ``out_dir``."""
    out = Path(out_dir)
    csv_path, md_path = out / f"{stem}.csv", out / f"{stem}.md"
    atomic_write_csv(table, csv_path)
    markdown = f"# {title}\n\n{table.to_markdown(index=False)}\n\n{caption.strip()}\n"
    atomic_write_text(md_path, markdown)
    return [csv_path, md_path]


#: Inline style of the HTML tables: readable on their own and inside the Snakemake report's viewer.
_HTML_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.2em;color:#1e293b}"
    "table{border-collapse:collapse;font-size:14px}"
    "th,td{border:1px solid #cbd5e1;padding:4px 8px;text-align:right;white-space:nowrap}"
    "th{background:#f1f5f9}td:first-child,th:first-child{text-align:left}"
    "tr:nth-child(even) td{background:#f8fafc}p{max-width:75em;line-height:1.45}"
)


def _html_paragraph(text: str) -> str:
    """One caption paragraph; its Markdown list items ("- ...") become an HTML list."""
    lines = [line.strip() for line in text.strip().splitlines()]
    items = [line[2:] for line in lines if line.startswith("- ")]
    prose = " ".join(line for line in lines if not line.startswith("- "))
    listed = "".join(f"<li>{html.escape(item)}</li>" for item in items)
    return (f"<p>{html.escape(prose)}</p>" if prose else "") + (f"<ul>{listed}</ul>" if items else "")


def html_page(title: str, shown: pd.DataFrame, caption: str, empty_text: str | None = None) -> str:
    """A standalone HTML page: the title, the display table (cells as shown in the Markdown) and its caption;
    ``empty_text``, when given, stands in place of the table."""
    body = (f"<p><em>{html.escape(empty_text)}</em></p>" if empty_text
            else shown.to_html(index=False, escape=True, border=0))
    paragraphs = "".join(_html_paragraph(part) for part in caption.strip().split("\n\n") if part.strip())
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_HTML_STYLE}</style></head><body><h2>{html.escape(title)}</h2>{body}{paragraphs}</body></html>\n")


def write_display_table(numbers: pd.DataFrame, shown: pd.DataFrame, out_dir: str | Path, stem: str, title: str,
                        caption: str, empty_text: str | None = None, notes: str = "") -> list[Path]:
    """Write ``stem.csv`` (``numbers``: tidy, NaN for missing) and the display table ``shown`` as
    ``stem.md``, ``stem.tex`` and ``stem.html`` (the report's view), each with title and caption.
    ``empty_text`` stands in for an empty table in the Markdown and HTML; ``notes`` follow the caption."""
    out = Path(out_dir)
    paths = [out / f"{stem}.{ext}" for ext in ("csv", "md", "tex", "html")]
    stand_in = empty_text if empty_text and not len(shown) else None
    text = caption.strip() + (f"\n\n{notes.strip()}" if notes else "")
    atomic_write_csv(numbers, paths[0])
    body = f"_{stand_in}_" if stand_in else shown.to_markdown(index=False, disable_numparse=True)
    atomic_write_text(paths[1], f"# {title}\n\n{body}\n\n{text}\n")
    atomic_write_text(paths[2], shown.to_latex(index=False, caption=f"{title}. {caption.strip()}", label=f"tab:{stem}",
                                               escape=True))
    atomic_write_text(paths[3], html_page(title, shown, text, stand_in))
    return paths
