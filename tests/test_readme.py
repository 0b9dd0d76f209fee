"""The README's Python examples run as written (so the front door never lies)."""

import pathlib
import re
import sys

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.skipif(not README.exists(), reason="README.md not beside tests/ (installed tests)")
def test_readme_python_blocks_run(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python examples"
    monkeypatch.chdir(tmp_path)  # the tour saves a model file
    for i, block in enumerate(blocks):
        exec(compile(block, f"README block {i}", "exec"), {})
    # The tour draws figures a reader would look at; later tests count the open ones.
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
