"""The notebooks run top to bottom, in a kernel on this interpreter, against the FakeFlowise they start.

Each notebook is executed with nbclient in a fresh kernel whose kernelspec (written to a temporary directory and
found through ``JUPYTER_PATH``) runs ``sys.executable``, so the notebooks see exactly the packages pytest sees,
whatever kernels the machine has installed. A cell that raises, anything written to stderr, or a FakeFlowise
still listening after the last cell fails the test.

The ``FLOWISE_*`` variables are removed from the kernel's environment, so here the notebooks use the emulator;
``tests/e2e/test_notebooks_e2e.py`` runs them again against the real Flowise server of the e2e suite.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
from pathlib import Path
from typing import Any

import nbclient
import nbformat
import pytest
from ipykernel import kernelspec

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9]*.ipynb"))
KERNEL_NAME = "flowise-integrations-test"
CELL_TIMEOUT = 60
FLOWISE_VARS = ("FLOWISE_BASE_URL", "FLOWISE_CHATFLOW_ID", "FLOWISE_API_KEY")
SERVING = re.compile(r"serving .* on (http://127\.0\.0\.1:(\d+))")


@pytest.fixture(scope="module")
def jupyter_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding one kernelspec: ipykernel on ``sys.executable``."""
    root = tmp_path_factory.mktemp("jupyter")
    kernelspec.write_kernel_spec(
        str(root / "kernels" / KERNEL_NAME), overrides={"display_name": f"Python ({sys.executable})"}
    )
    spec = json.loads((root / "kernels" / KERNEL_NAME / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    return root


def _kernel_env(jupyter_path: Path, ipython_dir: Path, real: dict[str, str] | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in FLOWISE_VARS}
    env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(jupyter_path), os.environ.get("JUPYTER_PATH")]))
    env["IPYTHONDIR"] = str(ipython_dir)  # no user profile or startup scripts
    env.update(real or {})
    return env


def _stream_text(cell: Any, name: str) -> str:
    return "".join(
        o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == name
    )


def _port_is_closed(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _execute(
    path: Path, jupyter_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, real: dict[str, str] | None = None
) -> Any:
    """Run the notebook; return it executed. Checks the emulator is stopped before the kernel goes away."""
    nb = nbformat.read(path, as_version=4)
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    server_ports: list[int] = []
    still_open: list[int] = []

    def on_cell_executed(cell: Any, **_: Any) -> None:
        found = SERVING.search(_stream_text(cell, "stdout"))
        if found:
            server_ports.append(int(found.group(2)))
        if cell is code_cells[-1]:  # the kernel (and any server thread in it) is still alive here
            still_open.extend(port for port in server_ports if not _port_is_closed(port))

    client = nbclient.NotebookClient(
        nb,
        kernel_name=KERNEL_NAME,
        timeout=CELL_TIMEOUT,
        startup_timeout=60,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
        on_cell_executed=on_cell_executed,
    )
    env = _kernel_env(jupyter_path, tmp_path / "ipython", real)
    monkeypatch.setenv("JUPYTER_PATH", env["JUPYTER_PATH"])  # where this process looks for the kernelspec
    client.execute(env=env)
    assert client.kc is None and (client.km is None or not client.km.has_kernel), "the kernel was left running"

    stderr = {i: _stream_text(cell, "stderr") for i, cell in enumerate(code_cells) if _stream_text(cell, "stderr")}
    assert not stderr, f"cells wrote to stderr: {stderr}"
    errors = [o for cell in code_cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    if real is None:
        assert server_ports, "the first cell should report where FakeFlowise is serving"
    assert not still_open, f"FakeFlowise still listening on {still_open} after the last cell"
    return nb


@pytest.mark.timeout(240)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_against_fake_flowise(
    path: Path, jupyter_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nb = _execute(path, jupyter_path, tmp_path, monkeypatch)
    first = next(cell for cell in nb.cells if cell.cell_type == "code")
    assert "FakeFlowise" in _stream_text(first, "stdout")
    skipped = [cell for cell in nb.cells if "(skipped against" in _stream_text(cell, "stdout")]
    assert not skipped, "against the emulator, no cell should skip"


def test_there_are_three_notebooks() -> None:
    assert [p.name for p in NOTEBOOKS] == ["01_quickstart.ipynb", "02_langchain.ipynb", "03_llama_index.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"clear the outputs of {path.name}"
