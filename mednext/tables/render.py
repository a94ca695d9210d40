"""Write a table as CSV and Markdown (with its caption), atomically."""

from __future__ import annotations

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
