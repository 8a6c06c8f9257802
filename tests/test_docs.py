"""Every python example of README.md and docs/*.md runs as written.

A page's ```python blocks run top to bottom in one namespace, in a fresh folder where
`runs/quickstart` is a trained model (the tiny test model stands in for the quickstart's) and MiniLM
and the bundled data are installed. A block that needs the network or the reader's own files says so
with `path/to/` or `hf://` and is not run; other languages (bash, json) are shown, not run.
"""

import os
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
NOT_RUN = ("path/to/", "hf://")


def python_blocks(page):
    """`(line, code)` of each python block of the page that is meant to run."""
    text = page.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, match.start()) + 1, match.group(1))
        for match in BLOCK.finditer(text)
        if not any(marker in match.group(1) for marker in NOT_RUN)
    ]


def test_the_pages_have_examples_to_run():
    assert sum(len(python_blocks(page)) for page in PAGES) >= 10


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_the_python_examples_of_a_page_run(page, tiny_trained_model, tmp_path, monkeypatch):
    blocks = python_blocks(page)
    if not blocks:
        pytest.skip(f"{page.name} has no python example to run")
    (tmp_path / "runs").mkdir()
    os.symlink(tiny_trained_model, tmp_path / "runs" / "quickstart")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for line, code in blocks:
        try:
            exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
        except Exception as error:
            raise AssertionError(
                f"{page.name}, the block at line {line} failed: {error!r}"
            ) from error
