"""Small layers sharing a crossbar: blocks of different layers on one core's array.

Blocks are rectangles of rows x cols cells; several fit on one crossbar when they do not
overlap. Each layer's MVM drives only its own rows and converts only its own columns, so blocks
side by side (sharing rows) or stacked (sharing columns) do not disturb each other; the layers
on a crossbar take turns on its array. Packing: shelves (first fit, tallest blocks first):
a block goes on the first shelf of the first crossbar with room, else on a new shelf below the
last one, else on a new crossbar.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence


def shelf_pack(
    blocks: Sequence[tuple[Hashable, int, int]], rows: int, cols: int
) -> dict[Hashable, tuple[int, int, int]]:
    """{block key: (crossbar, first row, first column)} for (key, rows, cols) rectangles of at
    most rows x cols cells each; crossbars numbered from 0 in the order they are opened."""
    order = sorted(range(len(blocks)), key=lambda i: (-blocks[i][1], -blocks[i][2], i))
    shelves: list[list[list[int]]] = []  # per crossbar: [first row, height, columns used]
    where: dict[Hashable, tuple[int, int, int]] = {}
    for i in order:
        key, r, c = blocks[i]
        if r > rows or c > cols:
            raise ValueError(
                f"block {key} of {r}x{c} cells is larger than a {rows}x{cols} crossbar"
            )
        where[key] = _place(shelves, r, c, rows, cols)
    return where


def _place(shelves, r: int, c: int, rows: int, cols: int) -> tuple[int, int, int]:
    for x, mine in enumerate(shelves):
        for shelf in mine:
            if shelf[1] >= r and cols - shelf[2] >= c:
                shelf[2] += c
                return x, shelf[0], shelf[2] - c
        top = mine[-1][0] + mine[-1][1]
        if rows - top >= r:
            mine.append([top, r, c])
            return x, top, 0
    shelves.append([[0, r, c]])
    return len(shelves) - 1, 0, 0
