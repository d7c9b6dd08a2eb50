"""Self-contained HTML pages of the Markdown tables, for ``snakemake --report``.

Snakemake's report shows images, PDFs and HTML inline and offers every other file as a download, so
each Markdown table (``tables/*.md``) also gets an HTML page: the same text rendered by markdown-it
(CommonMark plus tables), with a small inline style sheet and nothing fetched from the network.
"""

from __future__ import annotations

import html

from markdown_it import MarkdownIt

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
th { background: #f2f2f2; }
tr:nth-child(even) td { background: #fafafa; }
p { max-width: 60em; }
"""


def markdown_page(text: str, title: str) -> str:
    """An HTML document of the Markdown ``text`` (tables included), titled ``title``."""
    body = MarkdownIt("commonmark").enable("table").render(text)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n{body}</body></html>\n"
    )
