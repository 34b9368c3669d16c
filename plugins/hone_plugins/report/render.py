"""A report as sections of blocks, rendered to one self-contained HTML page and to Markdown."""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Sequence
from typing import Any

from hone.report import Block, Code, Details, Image, Section, Text


def fmt(value: Any) -> str:
    """A cell: numbers short and readable, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value == int(value) and abs(value) >= 1000:
            return f"{int(value):,}"
        if 1e-3 <= abs(value) < 1:
            return f"{value:.4f}"
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    if isinstance(value, (list, dict)):
        return ", ".join(map(fmt, value)) if isinstance(value, list) and len(value) <= 8 else str(value)
    return str(value)


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px 32px 64px;background:#fff;min-height:100vh}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:19px;margin:32px 0 10px;padding-bottom:4px;border-bottom:2px solid #e3e6ec}
h3{font-size:15px;margin:18px 0 6px}.sub{color:#5b6475;margin:0 0 12px}
nav{font-size:13px;margin:10px 0 0}nav a{margin-right:14px;color:#2456a6;text-decoration:none}
table{border-collapse:collapse;margin:8px 0 14px;font-size:13px}caption{text-align:left;font-weight:600;padding:4px 0}
th,td{border:1px solid #dde1e8;padding:4px 9px;text-align:right}th{background:#eef1f6}
td:first-child,th:first-child{text-align:left}tr:nth-child(even) td{background:#fafbfc}
.kv td{text-align:left}.kv td:first-child{color:#5b6475}
img{max-width:100%;height:auto;display:block;margin:8px 0 16px;border:1px solid #eceef2}
pre{background:#f3f5f8;border:1px solid #e1e5eb;padding:10px;font-size:12px;overflow:auto;max-height:480px}
details{margin:6px 0 12px}summary{cursor:pointer;color:#2456a6}
"""


def _html_block(block: Block) -> str:
    if isinstance(block, Text):
        return f"<p>{html.escape(block.text)}</p>"
    if isinstance(block, Code):
        return f"<pre>{html.escape(block.text)}</pre>"
    if isinstance(block, Image):
        data = base64.b64encode(block.data).decode("ascii")
        return f'<img src="data:image/png;base64,{data}" alt="{html.escape(block.alt)}">'
    if isinstance(block, Details):
        inner = "\n".join(_html_block(b) for b in block.blocks)
        return f"<details><summary>{html.escape(block.summary)}</summary>\n{inner}\n</details>"
    caption = f"<caption>{html.escape(block.caption)}</caption>" if block.caption else ""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in block.headers)
    head = f"<thead><tr>{head}</tr></thead>" if any(block.headers) else ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(c))}</td>" for c in row) + "</tr>" for row in block.rows)
    kind = "" if any(block.headers) else ' class="kv"'
    return f"<table{kind}>{caption}{head}<tbody>{body}</tbody></table>"


def render_html(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """One page with everything inline: no script, no stylesheet or image fetched from anywhere."""
    nav = " ".join(f'<a href="#{slug(s.title)}">{html.escape(s.title)}</a>' for s in sections)
    body = "\n".join(
        f'<section id="{slug(s.title)}"><h2>{html.escape(s.title)}</h2>\n' + "\n".join(_html_block(b) for b in s.blocks) + "</section>"
        for s in sections
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head>\n<body><main><h1>{html.escape(title)}</h1><p class=\"sub\">{html.escape(subtitle)}</p>"
        f"<nav>{nav}</nav>\n{body}\n</main></body></html>\n"
    )


def _md_cell(value: Any) -> str:
    return fmt(value).replace("|", "\\|").replace("\n", " ")


def _md_block(block: Block) -> str:
    if isinstance(block, Text):
        return block.text
    if isinstance(block, Code):
        return f"```\n{block.text.rstrip()}\n```"
    if isinstance(block, Image):
        return f"*(plot in report.html: {block.alt})*"
    if isinstance(block, Details):
        return f"**{block.summary}**\n\n" + "\n\n".join(_md_block(b) for b in block.blocks)
    lines = [f"**{block.caption}**", ""] if block.caption else []
    lines.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
    lines.append("|" + "|".join("---" for _ in block.headers) + "|")
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
    return "\n".join(lines)


def render_markdown(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """The same sections as text; plots are only named (they live in the HTML page)."""
    parts = [f"# {title}", subtitle]
    for section in sections:
        parts.append(f"## {section.title}")
        parts += [_md_block(b) for b in section.blocks]
    return "\n\n".join(parts) + "\n"
