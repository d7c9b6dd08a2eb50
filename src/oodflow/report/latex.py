r"""LaTeX tables in the booktabs layout: the one writer behind every ``.tex`` table of the reports.

:func:`booktabs` returns, line by line::

    \begin{table}[t]                 } only with a caption or a label
    \centering                       }
    \small                           }
    \caption{<caption>}              } only with a caption
    \label{<label>}                  } only with a label
    \begin{tabular}{<colspec>}
    \toprule
    <header cells joined by " & "> \\
    \midrule
    <row cells joined by " & "> \\   (one line per row; a row given as one string is a raw line,
    ...                               e.g. MIDRULE between groups)
    \bottomrule
    \end{tabular}
    \end{table}                      } with the \begin{table}
    % <comment>                      } only with a comment

and a final newline. The caption, header and cells pass through ``escape`` (default
:func:`escape`); cells that are :class:`Raw` (LaTeX source such as ``\textbf{..}``) and the label do
not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

#: A row that is this line: a rule between groups of rows.
MIDRULE = "\\midrule"

#: Character -> LaTeX text-mode source. Specials of LaTeX first, then the Unicode signs the tables use.
_ESCAPES = {
    "\\": "\\textbackslash{}",
    "{": "\\{",
    "}": "\\}",
    "$": "\\$",
    "&": "\\&",
    "%": "\\%",
    "#": "\\#",
    "_": "\\_",
    "~": "\\textasciitilde{}",
    "^": "\\textasciicircum{}",
    "±": "$\\pm$",
    "Δ": "$\\Delta$",
    "−": "$-$",  # U+2212 minus sign
    "–": "--",  # U+2013 en dash
    "↑": "$\\uparrow$",
    "↓": "$\\downarrow$",
}
_TABLE = str.maketrans(_ESCAPES)
_COLUMN_LETTERS = set("lcrpmbX")


class Raw(str):
    """A cell that is LaTeX source already: :func:`booktabs` writes it unescaped."""


def escape(text: object) -> str:
    r"""``str(text)`` as LaTeX text: ``\ { } $ & % # _ ~ ^`` escaped; ``± Δ − – ↑ ↓`` as math or
    ``--``. One pass over the characters, so what one replacement writes is never escaped again."""
    return str(text).translate(_TABLE)


def columns(colspec: str) -> int | None:
    """How many columns a tabular column spec declares (``"ll r cc"`` -> 5; ``p{3cm}`` counts once,
    ``@{..}`` and ``|`` none); ``None`` where it cannot tell (a ``*{n}{..}`` repetition)."""
    if "*" in colspec:
        return None
    bare = colspec
    while True:
        stripped = re.sub(r"\{[^{}]*\}", "", bare)
        if stripped == bare:
            break
        bare = stripped
    return sum(ch in _COLUMN_LETTERS for ch in bare)


def booktabs(
    header: Sequence[object],
    rows: Sequence[Sequence[object] | str],
    colspec: str,
    caption: str | None = None,
    label: str | None = None,
    comment: str | None = None,
    escape: Callable[[object], str] | None = escape,
) -> str:
    """The table (layout in the module docstring). ``escape=None`` writes every text as given.

    Raises ``ValueError`` if the header or a row has another number of cells than ``colspec``
    declares columns (or than the header where the spec cannot be counted).
    """
    width = columns(colspec)
    if width is not None and len(header) != width:
        raise ValueError(f"column spec '{colspec}' declares {width} columns but the header has {len(header)}")
    for i, row in enumerate(rows):
        if not isinstance(row, str) and len(row) != len(header):
            raise ValueError(f"row {i} has {len(row)} cells, the header {len(header)}: {list(row)}")

    def text(cell: object) -> str:
        return str(cell) if escape is None or isinstance(cell, Raw) else escape(cell)

    def line(cells: Sequence[object]) -> str:
        return " & ".join(text(c) for c in cells) + " \\\\"

    floating = caption is not None or label is not None
    lines = ["\\begin{table}[t]", "\\centering", "\\small"] if floating else []
    if caption is not None:
        lines.append(f"\\caption{{{text(caption)}}}")
    if label is not None:
        lines.append(f"\\label{{{label}}}")
    lines += [f"\\begin{{tabular}}{{{colspec}}}", "\\toprule", line(header), "\\midrule"]
    lines += [row if isinstance(row, str) else line(row) for row in rows]
    lines += ["\\bottomrule", "\\end{tabular}"]
    if floating:
        lines.append("\\end{table}")
    if comment is not None:
        lines += [f"% {part}" for part in comment.splitlines()]
    return "\n".join(lines) + "\n"
