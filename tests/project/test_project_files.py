"""The project's own files agree with each other.

- environment.yml (conda, Binder) lists the same packages, with the same version
  specifiers, as pyproject.toml (runtime + every optional group);
- .ci/run runs the README's test command, and the README documents `make lab` and
  `make test`, which the Makefile defines.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: tomllib is new in 3.11
    tomllib = pytest.importorskip("tomli", reason="Python 3.10 needs tomli to read pyproject.toml")

ROOT = Path(__file__).resolve().parents[2]

# conda-forge package name -> PyPI name, where the two differ.
CONDA_TO_PYPI = {"playwright-python": "playwright"}
# conda entries that are the environment itself, not project dependencies: the interpreter, pip
# and the OpenSSL command line the notebooks run beside kittylab (not a Python package).
CONDA_ONLY = {"python", "pip", "openssl"}


def parse_environment_yml(text: str) -> dict:
    """Parse the small YAML subset environment.yml uses.

    Top-level `key: value` and `key:` followed by `- item` lines, where an item may
    itself be `- name:` with a more deeply indented list (the `pip:` section).
    Anything else raises, so that a richer file fails loudly instead of being misread.
    """
    data: dict = {}
    key = None
    nested = None
    nested_indent = 0
    for raw in text.splitlines():
        if raw.lstrip().startswith("#"):
            continue
        line = re.sub(r"\s+#.*$", "", raw).rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        s = line.strip()
        if indent == 0:
            k, colon, v = s.partition(":")
            if not colon:
                raise ValueError(f"unsupported top-level line: {raw!r}")
            key, nested = k.strip(), None
            data[key] = v.strip() or []
            continue
        if not s.startswith("- ") or key is None or not isinstance(data[key], list):
            raise ValueError(f"unsupported line: {raw!r}")
        item = s[2:].strip()
        if nested is not None and indent > nested_indent:
            nested.append(item)
            continue
        nested = None
        if item.endswith(":"):
            nested, nested_indent = [], indent
            data[key].append({item[:-1].strip(): nested})
        else:
            data[key].append(item)
    return data


def requirement_key(spec: str) -> tuple[str, str]:
    """(canonical name, extras + specifier + marker) of one requirement, for comparing."""
    try:
        req = Requirement(spec)
    except InvalidRequirement as exc:  # e.g. a conda-only spec such as "foo 1.2.*"
        raise AssertionError(f"cannot compare {spec!r}: {exc}") from None
    name = canonicalize_name(CONDA_TO_PYPI.get(req.name, req.name))
    extra = "".join(f"[{e}]" for e in sorted(req.extras))
    marker = f"; {req.marker}" if req.marker else ""
    return name, f"{extra}{req.specifier}{marker}"


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def environment() -> dict:
    return parse_environment_yml((ROOT / "environment.yml").read_text(encoding="utf-8"))


def conda_packages(environment: dict) -> list[str]:
    return [d for d in environment["dependencies"] if isinstance(d, str)]


def pip_section(environment: dict) -> list[str]:
    sections = [d["pip"] for d in environment["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, "environment.yml needs exactly one `- pip:` section"
    return sections[0]


def test_conda_environment_matches_pyproject(pyproject, environment):
    project = pyproject["project"]
    declared = list(project["dependencies"])
    for group in project.get("optional-dependencies", {}).values():
        declared += group
    from_pyproject = {requirement_key(s) for s in declared}

    conda_names = {canonicalize_name(Requirement(s).name) for s in conda_packages(environment)}
    for conda_name, pypi_name in CONDA_TO_PYPI.items():
        assert pypi_name not in conda_names, f"conda-forge calls {pypi_name!r} {conda_name!r}"

    from_conda = {
        requirement_key(s)
        for s in conda_packages(environment)
        if canonicalize_name(Requirement(s).name) not in CONDA_ONLY
    }
    # Test tools conda-forge does not carry come from PyPI through the pip section.
    from_conda |= {requirement_key(s) for s in pip_section(environment) if not s.startswith("-")}

    assert from_conda == from_pyproject, (
        f"only in pyproject.toml: {sorted(from_pyproject - from_conda)}; "
        f"only in environment.yml: {sorted(from_conda - from_pyproject)}"
    )


def test_conda_environment_pins_python_like_pyproject(pyproject, environment):
    pythons = [s for s in conda_packages(environment) if Requirement(s).name == "python"]
    assert len(pythons) == 1
    assert str(Requirement(pythons[0]).specifier) == pyproject["project"]["requires-python"]


def test_conda_environment_installs_the_project(environment):
    assert environment["name"] == "kittylab"
    assert environment["channels"] == ["conda-forge"]
    assert "-e ." in pip_section(environment)


def test_test_extra_includes_lab_extra(pyproject):
    extras = pyproject["project"]["optional-dependencies"]
    lab = {requirement_key(s) for s in extras["lab"]}
    test = {requirement_key(s) for s in extras["test"]}
    assert lab <= test, f"`test` lacks {sorted(lab - test)}"


def test_hand_parser_agrees_with_yaml(environment):
    # PyYAML comes with jupyterlab (via jupyter-events); it is not a kittylab dependency.
    yaml = pytest.importorskip("yaml")
    assert yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8")) == environment


def _code_lines(path: Path) -> list[str]:
    """Non-comment lines of a shell script or Makefile."""
    return [line for line in path.read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith("#")]


def test_ci_script_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make lab" in readme
    assert "make test" in readme

    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK), ".ci/run must be executable"
    assert ci.read_text(encoding="utf-8").startswith("#!"), ".ci/run needs a shebang line"
    lines = _code_lines(ci)
    assert any(re.fullmatch(r"\s*set -euo pipefail\s*", line) for line in lines)
    assert any(re.search(r"(^|[\s;&|(])make\s+test(\s|$|;)", line) for line in lines), (
        ".ci/run must call `make test`, the README's test command"
    )
    assert any(re.search(r"\bexport\s+KITTYLAB_REQUIRE_SYSTEM=1\b", line) for line in lines)


def test_makefile_defines_the_documented_targets():
    targets = {
        m.group(1)
        for line in _code_lines(ROOT / "Makefile")
        if (m := re.match(r"^([A-Za-z][\w-]*)\s*:(?!=)", line))
    }
    assert {"setup", "lab", "test", "bench", "clean"} <= targets


def test_conda_environment_brings_the_openssl_3_command_line(environment):
    """The side-by-side cells need OpenSSL 3's command line on every system, not macOS's LibreSSL."""
    openssl = [s for s in conda_packages(environment) if Requirement(s).name == "openssl"]
    assert openssl, "environment.yml must list conda-forge's openssl"
    assert not Requirement(openssl[0]).specifier.contains("1.1.1"), openssl
    assert Requirement(openssl[0]).specifier.contains("3.0.0"), openssl


#: The project files that name paths in the repository (the tests moved into folders once, and these kept the old paths).
NAMING_FILES = ["README.md", "pyproject.toml", "environment.yml", "Makefile", ".ci/run", ".ci/without-system-programs",
                "tools/execute_notebooks.py", "tools/make_cats.py"]
#: Paths that exist only once something runs (gitignored output).
MADE_BY_RUNNING = ("benchmarks/out",)


def test_every_path_the_project_files_name_exists():
    named = {(name, path) for name in NAMING_FILES
             for path in re.findall(r"(?<![\w./-])((?:tests|tools|kittylab|notebooks|benchmarks|\.ci)/[\w./*-]*[\w*])",
                                    (ROOT / name).read_text(encoding="utf-8"))}
    missing = [(name, path) for name, path in sorted(named)
               if not any(ROOT.glob(path)) and not path.startswith(MADE_BY_RUNNING)]
    assert len(named) > 40 and missing == []
