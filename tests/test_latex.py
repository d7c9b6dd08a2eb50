"""The one booktabs writer of the report tables (oodflow.report.latex)."""

from __future__ import annotations

import pytest

from oodflow.report.latex import MIDRULE, Raw, booktabs, columns, escape


def test_escape_writes_every_special_once():
    assert escape("a_b 5% x&y #1") == "a\\_b 5\\% x\\&y \\#1"
    assert escape("{$x$}") == "\\{\\$x\\$\\}"
    assert escape("a\\b ~ ^") == "a\\textbackslash{}b \\textasciitilde{} \\textasciicircum{}"
    # one pass: the $ and \ that a replacement writes are not escaped again
    assert (
        escape("1 ± 2, Δ = a − b, 3–4, ↑ ↓")
        == "1 $\\pm$ 2, $\\Delta$ = a $-$ b, 3--4, $\\uparrow$ $\\downarrow$"
    )
    assert escape(12) == "12" and escape("plain text.") == "plain text."


@pytest.mark.parametrize(
    ("spec", "count"),
    [("ll", 2), ("ll r ccc", 6), ("|l|c|", 2), ("p{3cm}l", 2), ("@{}lr@{}", 2), ("*{3}{c}", None)],
)
def test_columns_counts_the_spec(spec, count):
    assert columns(spec) == count


def test_float_with_caption_and_label():
    tex = booktabs(["Run", "AUROC ↑"], [["base_1", "90.0 ± 1.0"], ["oe", "95%"]], "lc", "A & B", "tab:x_y")
    assert tex == (
        "\\begin{table}[t]\n\\centering\n\\small\n"
        "\\caption{A \\& B}\n"
        "\\label{tab:x_y}\n"  # a label is a key: never escaped
        "\\begin{tabular}{lc}\n\\toprule\n"
        "Run & AUROC $\\uparrow$ \\\\\n"
        "\\midrule\n"
        "base\\_1 & 90.0 $\\pm$ 1.0 \\\\\n"
        "oe & 95\\% \\\\\n"
        "\\bottomrule\n\\end{tabular}\n\\end{table}\n"
    )


def test_caption_without_label_and_label_without_caption():
    only_caption = booktabs(["a"], [["1"]], "c", caption="C").splitlines()
    assert only_caption[:4] == ["\\begin{table}[t]", "\\centering", "\\small", "\\caption{C}"]
    assert not any(line.startswith("\\label") for line in only_caption)
    assert only_caption[4] == "\\begin{tabular}{c}" and only_caption[-1] == "\\end{table}"
    only_label = booktabs(["a"], [["1"]], "c", label="tab:l").splitlines()
    assert only_label[3] == "\\label{tab:l}" and not any("\\caption" in line for line in only_label)


def test_bare_tabular_with_comment_rules_and_raw_cells():
    rows = [[1, Raw("\\textbf{2}")], MIDRULE, [3, "4_5"]]
    tex = booktabs(["x", "y"], rows, "rl", comment="bench: a table\nsecond line")
    assert tex.splitlines() == [
        "\\begin{tabular}{rl}",
        "\\toprule",
        "x & y \\\\",
        "\\midrule",
        "1 & \\textbf{2} \\\\",
        "\\midrule",
        "3 & 4\\_5 \\\\",
        "\\bottomrule",
        "\\end{tabular}",
        "% bench: a table",
        "% second line",
    ]
    assert tex.endswith("\n") and "\\begin{table}" not in tex


def test_escape_none_writes_text_as_given():
    tex = booktabs(["$a_1$"], [["50%"]], "c", caption="x_y", escape=None)
    assert "\\caption{x_y}" in tex and "$a_1$ \\\\" in tex and "50% \\\\" in tex
    custom = booktabs(["h"], [["v"]], "c", escape=str.upper)
    assert "H \\\\" in custom and "V \\\\" in custom


def test_cells_that_do_not_fit_the_spec_are_an_error():
    with pytest.raises(ValueError, match="declares 3 columns but the header has 2"):
        booktabs(["a", "b"], [], "lcr")
    with pytest.raises(ValueError, match="row 1 has 1 cells, the header 2"):
        booktabs(["a", "b"], [["1", "2"], ["3"]], "lc")
    with pytest.raises(ValueError, match="row 0 has 3 cells"):  # an uncountable spec: the header decides
        booktabs(["a", "b"], [["1", "2", "3"]], "*{2}{c}")
