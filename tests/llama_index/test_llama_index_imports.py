"""The walls: the core imports no framework, and neither wing imports the other framework (fresh interpreters)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import flowise_integrations

PACKAGE = Path(flowise_integrations.__file__).parent
FRAMEWORKS = {"langchain": ("langchain", "langchain_core", "langgraph"), "llama_index": ("llama_index",)}


def _imported_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(out.stdout.splitlines()[-1]))


def _has_wing(name: str) -> bool:
    return (PACKAGE / name / "__init__.py").is_file()


def test_core_imports_no_framework() -> None:
    top = _imported_after("import flowise_integrations, flowise_integrations.testing")
    assert not top & {*FRAMEWORKS["langchain"], *FRAMEWORKS["llama_index"]}


@pytest.mark.parametrize(("wing", "other"), [("llama_index", "langchain"), ("langchain", "llama_index")])
def test_a_wing_never_imports_the_other_framework(wing: str, other: str) -> None:
    if not _has_wing(wing):
        pytest.skip(f"flowise_integrations.{wing} is not built yet")
    top = _imported_after(f"import flowise_integrations.{wing}")
    assert top & set(FRAMEWORKS[wing]), f"the {wing} wing should import its framework"
    assert not top & set(FRAMEWORKS[other]), (
        f"importing the {wing} wing pulled in {sorted(top & set(FRAMEWORKS[other]))}"
    )
