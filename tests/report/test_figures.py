"""``kavier.report.figures``: SVG output is byte-stable."""

from __future__ import annotations

from kavier.report import figures


def test_svg_bytes_are_stable():
    def render() -> str:
        fig = figures._new_figure(4, 3)
        ax = fig.subplots()
        ax.plot([1, 2, 3], [3, 1, 2])
        ax.fill_between([1, 2, 3], [0, 0, 0], [1, 2, 1])
        return figures.to_svg(fig)

    assert render() == render()
