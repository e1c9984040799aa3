"""The one table printer of ``make bench``: Markdown tables, columns padded to line up."""

from __future__ import annotations


def table(title: str, header: tuple, rows: list) -> str:
    """``title`` on a line of its own, then ``header`` and ``rows`` as a Markdown table."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]

    def line(cells) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    out = [f"\n{title}\n", line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(row) for row in rows]
    return "\n".join(out)
