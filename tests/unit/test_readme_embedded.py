"""The README's "Embedded library" examples run, and print what it says
(doctest over its ```python blocks, in a fresh directory, in order: the
second block reads what the first wrote)."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else len(text)]


def test_the_readme_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", section("Embedded library"), re.DOTALL)
    assert len(blocks) == 3
    globs: dict[str, object] = {}
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    parser = doctest.DocTestParser()
    for number, block in enumerate(blocks):
        test = parser.get_doctest(block, globs, f"README embedded example {number + 1}", str(README), 0)
        assert test.examples, number
        runner.run(test, clear_globs=False)
        globs = test.globs  # the DocTest worked on a copy: the next block continues from it
    results = runner.summarize(verbose=False)
    assert results.failed == 0 and results.attempted >= 10
