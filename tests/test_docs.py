"""Every python snippet in the README and docs runs."""
import os
import re

import pytest

from conftest import ROOT

DOCS = ["README.md", "docs/concepts.md", "docs/inference.md", "docs/tracking.md", "docs/multistream.md",
        "docs/analytics.md", "docs/smart-record.md", "docs/messaging.md", "docs/service.md"]


def snippets():
    for doc in DOCS:
        text = open(os.path.join(ROOT, doc), encoding="utf-8").read()
        for i, block in enumerate(re.findall(r"```python\n(.*?)```", text, re.S)):
            yield pytest.param(block, id=f"{doc}#{i}")


@pytest.mark.parametrize("code", list(snippets()))
def test_snippet_runs(code, tmp_path, monkeypatch, default_assets, capsys):
    """Runs the snippet; a `print(...)  # shown` line must print exactly what its comment shows."""
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "<snippet>", "exec"), {"__name__": "__snippet__"})
    shown = [m.group(1).strip() for m in re.finditer(r"^\s*print\(.*\)\s*#\s*(.+)$", code, re.M)]
    if shown:
        assert capsys.readouterr().out.strip().splitlines() == shown


def test_every_doc_has_its_snippets():
    per_doc = {}
    for p in snippets():
        doc = p.id.split("#")[0]
        per_doc[doc] = per_doc.get(doc, 0) + 1
    assert per_doc == {"README.md": 1, "docs/concepts.md": 2, "docs/inference.md": 1, "docs/tracking.md": 1,
                       "docs/multistream.md": 1, "docs/analytics.md": 1, "docs/smart-record.md": 1,
                       "docs/messaging.md": 1, "docs/service.md": 1}
