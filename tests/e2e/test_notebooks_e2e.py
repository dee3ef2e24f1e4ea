"""The notebooks, run top to bottom against the real Flowise server (their FLOWISE_* mode)."""

from __future__ import annotations

from pathlib import Path

import pytest
import test_notebooks
from harness import RealFlowiseState

jupyter_path = test_notebooks.jupyter_path  # the kernelspec fixture


@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", test_notebooks.NOTEBOOKS, ids=[p.stem for p in test_notebooks.NOTEBOOKS])
def test_notebook_runs_against_real_flowise(
    path: Path,
    jupyter_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    real_flowise: RealFlowiseState,
) -> None:
    real = {
        "FLOWISE_BASE_URL": real_flowise.base_url,
        "FLOWISE_CHATFLOW_ID": real_flowise.flows["retrieval_qa"],
        "FLOWISE_API_KEY": real_flowise.api_key,
    }
    nb = test_notebooks._execute(path, jupyter_path, tmp_path, monkeypatch, real)
    text = "".join(test_notebooks._stream_text(cell, "stdout") for cell in nb.cells if cell.cell_type == "code")
    assert "Using your Flowise server" in text
    assert real_flowise.api_key not in text, "the API key was printed"
    assert "Hello from the fake LLM!" in text  # the real server's answer (its LLM is our fake OpenAI server)
