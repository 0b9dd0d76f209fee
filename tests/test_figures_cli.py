"""`pycvnn figures`: the ten lecture figures as PNG files, one figure with --only, and the
bad values and missing pieces each give a one-line error and no partial output."""

import sys

import numpy as np
import pytest

from pycvnn import cli
from pycvnn.cli.figures import FIGURE_NAMES

PNG = b"\x89PNG\r\n\x1a\n"


def run(capsys, *argv):
    try:
        rc = cli.main(["figures", *argv])
    except SystemExit as exit_:
        rc = exit_.code
    out, err = capsys.readouterr()
    return rc, out, err


def distinct_colours(path):
    import matplotlib.pyplot as plt

    image = plt.imread(path)
    return len(np.unique(image.reshape(-1, image.shape[-1]), axis=0))


def test_all_ten_figures_are_written(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    out_dir = tmp_path / "figs"  # made by the command
    rc, out, err = run(capsys, "--out", str(out_dir), "--dpi", "50")
    assert rc == 0, err
    written = sorted(p.name for p in out_dir.iterdir())
    assert written == sorted(f"{name}.png" for name in FIGURE_NAMES)
    assert len(written) == 10
    for path in out_dir.iterdir():
        assert path.read_bytes()[:8] == PNG
        assert distinct_colours(path) > 100, path.name  # drawn, not blank
        assert f"{path}  " in out
    assert out.strip().splitlines()[-1].startswith("wrote 10 figure(s) in ")


def test_the_gallery_and_the_cli_list_the_same_figures():
    pytest.importorskip("matplotlib")
    from pycvnn.plot import gallery

    assert tuple(gallery.FIGURES) == FIGURE_NAMES


def test_only_writes_the_named_figures(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    rc, _, err = run(capsys, "--out", str(tmp_path), "--only", "dice", "--only", "losses")
    assert rc == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dice.png", "losses.png"]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--only", "nope"], "argument --only: invalid choice: 'nope'"),
        (["--dpi", "5"], "argument --dpi: expected a resolution from 20 to 600"),
        (["--dpi", "x"], "argument --dpi: expected a resolution"),
        (["--out", ""], "argument --out: expected a folder, got ''"),
    ],
)
def test_bad_values_are_one_line_errors(capsys, argv, words):
    rc, out, err = run(capsys, *argv)
    assert rc == 2 and words in err and len(err.strip().splitlines()) == 1 and not out


def test_a_file_as_out_is_an_error(capsys, tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    rc, _, err = run(capsys, "--out", str(target))
    assert rc == 2 and "expected a folder, got the file" in err


def test_an_out_folder_that_cannot_be_made_leaves_nothing(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder would go")
    rc, out, err = run(capsys, "--out", str(blocker / "figs"), "--only", "dice")
    assert rc == 1 and "could not write the figures to" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_without_matplotlib_it_says_which_extra(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    rc, out, err = run(capsys, "--out", str(tmp_path / "figs"))
    assert rc == 2 and "pip install 'pycvnn[plot]'" in err
    assert not (tmp_path / "figs").exists()


def test_importing_plot_without_matplotlib_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "pycvnn.plot" or m.startswith("pycvnn.plot.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'pycvnn\[plot\]'"):
        import pycvnn.plot  # noqa: F401
