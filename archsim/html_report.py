"""A self-contained HTML copy of a Markdown report, with its pictures embedded.

Understands the subset of Markdown that archsim's reports use: headings, paragraphs, pipe
tables, fenced code blocks, bullet lists and images (inlined as base64 PNG), so the file can
be mailed or archived on its own.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)]+)\)")
_STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
line-height:1.45;color:#222}pre{background:#f5f5f5;padding:.8rem;font-size:.85rem;
white-space:pre-wrap;overflow-wrap:anywhere;max-width:100%;overflow-x:auto}
table{border-collapse:collapse;display:block;max-width:100%;overflow-x:auto}
td,th{border:1px solid #ccc;padding:.25rem .6rem}
img{max-width:100%;margin:.5rem 0}h1,h2{border-bottom:1px solid #ddd}"""


def markdown_to_html(markdown: str, base_dir: Path, title: str) -> str:
    """The report as one HTML page; images are read from `base_dir` and embedded."""
    out = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{_STYLE}</style></head><body>"
    ]
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            block = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                block.append(lines[i])
                i += 1
            out.append(f"<pre>{html.escape(chr(10).join(block))}</pre>")
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{_inline(line[level:].strip(), base_dir)}</h{level}>")
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(set(c) <= {"-", ":"} for c in cells):
                    rows.append(cells)
                i += 1
            i -= 1
            head, *body = rows
            out.append(
                "<table><tr>"
                + "".join(f"<th>{_inline(c, base_dir)}</th>" for c in head)
                + "</tr>"
                + "".join(
                    "<tr>" + "".join(f"<td>{_inline(c, base_dir)}</td>" for c in r) + "</tr>"
                    for r in body
                )
                + "</table>"
            )
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:], base_dir)}</li>")
                i += 1
            i -= 1
            out.append("<ul>" + "".join(items) + "</ul>")
        elif line.strip():
            para = [line]
            while i + 1 < len(lines) and lines[i + 1].strip() and not _block_start(lines[i + 1]):
                i += 1
                para.append(lines[i])
            out.append(f"<p>{_inline(' '.join(para), base_dir)}</p>")
        i += 1
    out.append("</body></html>")
    return "\n".join(out)


def _block_start(line: str) -> bool:
    return line.startswith(("#", "|", "```", "- "))


def _inline(text: str, base_dir: Path) -> str:
    """Escape text, embed images, render **bold** and `code`."""
    parts = []
    pos = 0
    for m in _IMAGE.finditer(text):
        parts.append(_format(text[pos : m.start()]))
        path = base_dir / m.group(2)
        if path.is_file():
            data = base64.b64encode(path.read_bytes()).decode()
            parts.append(
                f"<img alt='{html.escape(m.group(1))}' src='data:image/png;base64,{data}'>"
            )
        else:
            parts.append(html.escape(m.group(0)))
        pos = m.end()
    parts.append(_format(text[pos:]))
    return "".join(parts)


def _format(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
