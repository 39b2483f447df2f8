"""Every python snippet in the README and docs runs."""
import os
import re

import pytest

from conftest import ROOT

DOCS = ["README.md", "docs/concepts.md", "docs/inference.md", "docs/tracking.md", "docs/multistream.md"]


def snippets():
    for doc in DOCS:
        text = open(os.path.join(ROOT, doc), encoding="utf-8").read()
        for i, block in enumerate(re.findall(r"```python\n(.*?)```", text, re.S)):
            yield pytest.param(block, id=f"{doc}#{i}")


@pytest.mark.parametrize("code", list(snippets()))
def test_snippet_runs(code, tmp_path, monkeypatch, default_assets):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "<snippet>", "exec"), {"__name__": "__snippet__"})


def test_every_doc_has_a_snippet():
    assert len(list(snippets())) >= 3
