"""Redraw the README's gallery: the ten figures of `pycvnn figures` as thumbnails in
docs/figures/, and the table between the README's gallery markers, each thumbnail linking to
the module that draws it, under the call.

    python scripts/make_gallery.py

Needs pycvnn[plot].
"""

import inspect
import pathlib
import re

from pycvnn.plot import gallery

ROOT = pathlib.Path(__file__).resolve().parents[1]
COLUMNS = 2


def source_of(name):
    """The repository path of the module whose function draws figure `name`."""
    call = gallery.FIGURES[name][0]
    function = getattr(__import__("pycvnn.plot", fromlist=["x"]), call.split("(")[0].split(".")[1])
    return pathlib.Path(inspect.getsourcefile(function)).resolve().relative_to(ROOT).as_posix()


def table():
    cells = [
        f"[![{name}](docs/figures/{name}.png)]({source_of(name)})<br>`{gallery.FIGURES[name][0]}`"
        for name in gallery.FIGURES
    ]
    rows = [cells[i : i + COLUMNS] for i in range(0, len(cells), COLUMNS)]
    lines = ["| " + " | ".join([""] * COLUMNS) + " |", "|" + " --- |" * COLUMNS]
    lines += ["| " + " | ".join(row + [""] * (COLUMNS - len(row))) + " |" for row in rows]
    return "\n".join(lines)


def main():
    gallery.write(ROOT / "docs" / "figures", dpi=40)
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = re.sub(
        r"<!-- gallery -->.*?<!-- /gallery -->",
        lambda m: f"<!-- gallery -->\n{table()}\n<!-- /gallery -->",
        text,
        flags=re.S,
    )
    readme.write_text(new)


if __name__ == "__main__":
    main()
