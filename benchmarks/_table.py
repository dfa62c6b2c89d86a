"""The plain-text table the benchmarks print (one helper, so every benchmark's table reads the same)."""

from __future__ import annotations


def format_table(table: list[list[str]]) -> str:
    """Left-aligned columns, a rule under the first (header) row; short rows are padded."""
    columns = max(len(r) for r in table)
    table = [r + [""] * (columns - len(r)) for r in table]
    widths = [max(len(r[i]) for r in table) for i in range(columns)]
    lines = []
    for i, r in enumerate(table):
        lines.append("  ".join(c.ljust(widths[j]) for j, c in enumerate(r)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def percent(share: float | None) -> str:
    """A share as a table cell: 0.8259 -> '82.6%'; '-' where there is none (a model without intervals)."""
    return "-" if share is None else f"{share:.1%}"
