"""The indicator report in the terminal: one row per indicator with a small bar chart.

The bar is scaled to the larger of the value and the highest target; each target is a mark on
it (green when met, red when not), so "how far from 10,000 and from 18,000" reads at a glance.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["bar", "render_indicators"]

BAR_WIDTH = 30


def bar(value: float | None, targets: list[dict[str, Any]], width: int = BAR_WIDTH) -> Text:
    """``value`` as a bar of ``width`` cells with a mark at each target."""
    if value is None:
        return Text("no data".ljust(width), style="dim")
    scale = max([value, *(t["value"] for t in targets)]) or 1.0
    filled = round(width * min(value, scale) / scale)
    cells = [("█", "cyan") if i < filled else ("░", "grey50") for i in range(width)]
    for target in targets:
        at = min(width - 1, max(0, round(width * target["value"] / scale) - 1))
        cells[at] = ("┃", "green" if target["met"] else "red")
    text = Text()
    for char, style in cells:
        text.append(char, style=style)
    return text


def _value(indicator: dict[str, Any]) -> str:
    value = indicator["value"]
    if value is None:
        return "n/a"
    if indicator["unit"] == "uses":
        return f"{int(value):,}"
    return f"{value:.1f} %"


def _targets(indicator: dict[str, Any]) -> Text:
    text = Text()
    for i, t in enumerate(indicator["targets"]):
        if i:
            text.append("  ")
        shown = f"{int(t['value']):,}" if indicator["unit"] == "uses" else f"{t['value']:g} %"
        text.append(("✓ " if t["met"] else "✗ ") + shown, style="green" if t["met"] else "red")
    return text


def _basis(indicator: dict[str, Any]) -> str:
    if indicator["unit"] == "uses":
        return indicator["source"]
    denominator = indicator["denominator"]
    shown = f"{denominator:,}" if denominator is not None else "?"
    return f"{indicator['numerator']:,} / {shown} ({indicator['source']})"


def render_indicators(report: dict[str, Any], console: Console) -> None:
    """Print ``report`` (from :func:`~gateway.reports.indicators.indicator_report`)."""
    table = Table(title=f"Result indicators {report['year']}", title_justify="left")
    table.add_column("KPI", style="bold")
    table.add_column("Indicator")
    table.add_column("Value", justify="right")
    table.add_column("Progress")
    table.add_column("Targets")
    table.add_column("Basis", style="dim")
    for indicator in report["indicators"]:
        table.add_row(
            indicator["kpi"],
            indicator["title"],
            _value(indicator),
            bar(indicator["value"], indicator["targets"]),
            _targets(indicator),
            _basis(indicator),
        )
    console.print(table)
    for indicator in report["indicators"]:
        for note in indicator["notes"]:
            console.print(f"[yellow]note[/yellow] {indicator['id']}: {note}")
