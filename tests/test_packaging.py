"""The package a user installs: what the wheel and the sdist hold and declare, the wheel alone in a clean venv
(the demo runs; a wing without its extra names the install), and what ``import flowise_integrations`` loads."""

from __future__ import annotations

import email
import json
import subprocess
import sys
import tarfile
import venv
import zipfile
from email.message import Message
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - mypy's dependency on 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PYTHONS = ("3.10", "3.11", "3.12", "3.13")


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel, built from this checkout (hatchling, no build isolation)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    return out


def wheel_of(dist: Path) -> Path:
    return next(dist.glob("flowise_integrations-*.whl"))


def sdist_of(dist: Path) -> Path:
    return next(dist.glob("flowise_integrations-*.tar.gz"))


def metadata(dist: Path) -> Message:
    with zipfile.ZipFile(wheel_of(dist)) as wheel:
        name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(wheel.read(name))


def test_the_license_is_in_the_repo_the_sdist_and_the_wheel(dist: Path) -> None:
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License")
    with zipfile.ZipFile(wheel_of(dist)) as wheel:
        names = [n for n in wheel.namelist() if n.endswith("/LICENSE")]
        assert [n.split("/", 1)[1] for n in names] == ["licenses/LICENSE"]
        assert wheel.read(names[0]).decode() == license_text
    with tarfile.open(sdist_of(dist)) as sdist:
        member = next(m for m in sdist.getmembers() if m.name.endswith("/LICENSE") and m.name.count("/") == 1)
        extracted = sdist.extractfile(member)
        assert extracted is not None and extracted.read().decode() == license_text
    assert metadata(dist)["License-Expression"] == "MIT"


def test_runtime_dependencies_are_only_what_the_core_imports(dist: Path) -> None:
    meta = metadata(dist)
    requires = meta.get_all("Requires-Dist") or []
    runtime = sorted(r.split("<")[0].split(">")[0].split(";")[0].strip() for r in requires if "extra ==" not in r)
    assert runtime == ["httpx", "pydantic"]
    assert not any("httpx-sse" in r for r in requires)
    assert sorted(meta.get_all("Provides-Extra") or []) == ["all", "cli", "langchain", "llama-index"]  # no "dev"
    assert meta["Requires-Python"] == ">=3.10"


def test_urls_and_classifiers(dist: Path) -> None:
    meta = metadata(dist)
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert {"Homepage", "Source", "Issues", "Changelog"} <= set(urls)
    assert urls["Changelog"].endswith("/CHANGELOG.md")
    classifiers = meta.get_all("Classifier") or []
    for version in PYTHONS:
        assert f"Programming Language :: Python :: {version}" in classifiers
    assert "Typing :: Typed" in classifiers


def test_the_wheel_holds_the_package_and_the_sdist_the_sources(dist: Path) -> None:
    with zipfile.ZipFile(wheel_of(dist)) as wheel:
        tops = {n.split("/", 1)[0] for n in wheel.namelist()}
        assert "flowise_integrations/py.typed" in wheel.namelist()
    assert tops == {"flowise_integrations", next(t for t in tops if t.endswith(".dist-info"))}
    with tarfile.open(sdist_of(dist)) as sdist:
        names = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    assert {"pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "flowise_integrations/__init__.py"} <= names
    assert "tests/test_packaging.py" in names
    assert not any(n.startswith((".venv/", ".git/")) or "__pycache__" in n for n in names)


def test_development_tools_are_dependency_groups_not_extras() -> None:
    groups = PYPROJECT["dependency-groups"]
    dev = " ".join(groups["dev"])
    for tool in ("pytest", "hypothesis", "httpx-sse", "mypy", "ruff", "langchain-tests"):
        assert tool in dev
    assert "twine" in " ".join(groups["release"])
    assert "dev" not in PYPROJECT["project"]["optional-dependencies"]


# -- the wheel alone, as `pip install flowise-integrations` leaves it --------------------------------------


@pytest.fixture(scope="module")
def wheel_venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean venv with only the wheel and its runtime dependencies: its ``bin`` directory."""
    home = tmp_path_factory.mktemp("wheel-venv")
    venv.EnvBuilder(with_pip=True).create(home)
    bin_dir = home / "bin"
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(wheel_of(dist))],
        check=True,
        capture_output=True,
    )
    return bin_dir


def in_venv(bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=180, check=False, cwd=bin_dir.parent, env={"NO_COLOR": "1"}
    )


def test_the_wheel_alone_runs_the_demo(wheel_venv: Path) -> None:
    result = in_venv(wheel_venv, str(wheel_venv / "flowise-integrations"), "demo")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("[core]") == 3
    assert "docs/introduction.md" in result.stdout  # the sources table, as plain text (rich is not installed)
    assert 'pip install "flowise-integrations[langchain]"' in result.stderr
    assert 'pip install "flowise-integrations[llama-index]"' in result.stderr


@pytest.mark.parametrize(("module", "extra"), [("langchain", "langchain"), ("llama_index", "llama-index")])
def test_a_wing_without_its_extra_names_the_install(wheel_venv: Path, module: str, extra: str) -> None:
    result = in_venv(wheel_venv, str(wheel_venv / "python"), "-c", f"import flowise_integrations.{module}")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ImportError: flowise_integrations.{module} needs ")
    assert last.endswith(f'pip install "flowise-integrations[{extra}]"')
    via = "llama-index" if module == "llama_index" else module
    cli = in_venv(wheel_venv, str(wheel_venv / "flowise-integrations"), "chat", "hi", "--chatflow", "f", "--via", via)
    assert cli.returncode == 5
    assert cli.stderr.strip().endswith(f'pip install "flowise-integrations[{extra}]"')


def test_the_wheel_alone_has_no_test_only_dependency(wheel_venv: Path) -> None:
    result = in_venv(wheel_venv, str(wheel_venv / "python"), "-c", "import httpx_sse")
    assert result.returncode == 1
    assert "No module named 'httpx_sse'" in result.stderr


# -- what `import flowise_integrations` loads (the import budget's structure; the time is benchmarks/) ------

LOADED = """
import json, sys
import flowise_integrations
from flowise_integrations import Prediction, PredictionRequest, SourceDocument
frameworks = sorted({m.split(".")[0] for m in sys.modules} & {"langchain_core", "llama_index", "numpy", "openai"})
built = [model.__pydantic_complete__ for model in (Prediction, PredictionRequest, SourceDocument)]
print(json.dumps({"frameworks": frameworks, "built": built}))
"""


def test_importing_the_core_loads_no_framework_and_builds_no_model_yet() -> None:
    result = subprocess.run([sys.executable, "-c", LOADED], capture_output=True, text=True, check=True)
    loaded = json.loads(result.stdout)
    assert loaded["frameworks"] == []
    assert loaded["built"] == [False, False, False]  # built on first use (defer_build), not at import


def test_the_import_benchmark_reports_median_floor_and_breakdown() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "import_cost.py"), "--runs", "3", "--profiles", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    for label in ("wall   median", "floor  median", "own    median", "flowise_integrations (this package)", "budget"):
        assert label in result.stdout
