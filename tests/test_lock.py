"""requirements/lock.txt and pyproject.toml agree, and the environment is the lock.

``scripts/bootstrap`` installs exactly the lock (``pip --require-hashes``); ``scripts/lock``
writes it from pyproject.toml. Someone who edits one and forgets the other gets one clear failure
here instead of two machines resolving different versions:

- every requirement of pyproject.toml (runtime, ``dev``, ``requirements/build.in``) has a pin in
  the lock that satisfies it, and the lock holds no direct requirement pyproject.toml dropped;
- every pin is exact and carries hashes; linters and the type checker are pinned exactly in
  pyproject.toml itself;
- every third-party module the code imports comes from a package it declares (not one that
  arrives only because something else depends on it);
- what is installed in this environment is what the lock pins.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements" / "lock.txt"
BUILD_IN = REPO / "requirements" / "build.in"
PYPROJECT = REPO / "pyproject.toml"
EXACT = ("ruff", "mypy", "import-linter", "uv")  # tools whose new releases change verdicts
FIRST_PARTY = {
    "sandbox",
    "kiosk",
    "drivers",
    "flows",
    "statedir",
    "fleet",
    "assets",
    "bench",
    "faults",
    "tests",
}


@dataclass
class Pin:
    name: str
    version: Version
    marker: str
    hashes: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)


def parse_lock(text: str) -> dict[str, Pin]:
    """The lock as uv and pip-tools write it: ``name==version [; marker] \\``, hash lines, and
    ``# via`` comments naming who asked for it."""
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    in_via = False
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if not line.startswith(" "):
            head = line.rstrip(" \\")
            spec, _, marker = head.partition(";")
            match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s]+)", spec.strip())
            assert match, f"not an exact pin in the lock: {line!r}"
            current = Pin(canonicalize_name(match[1]), Version(match[2]), marker.strip())
            pins[current.name] = current
            in_via = False
            continue
        assert current is not None, f"a continuation before any pin: {line!r}"
        body = line.strip().rstrip(" \\")
        if body.startswith("--hash="):
            current.hashes.append(body.removeprefix("--hash="))
        elif body.startswith("# via "):
            current.via.append(body.removeprefix("# via ").strip())
        elif body == "# via":
            in_via = True
        elif in_via and body.startswith("#   "):
            current.via.append(body.removeprefix("#   ").strip())
    return pins


def declared() -> dict[str, list[Requirement]]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    build = [
        ln.split("#")[0].strip() for ln in BUILD_IN.read_text().splitlines() if ln.split("#")[0]
    ]
    return {
        "runtime": [Requirement(r) for r in project["dependencies"]],
        "dev": [Requirement(r) for r in project["optional-dependencies"]["dev"]],
        "build": [Requirement(r) for r in build],
    }


def applies(marker: str) -> bool:
    """Whether a pin's marker holds where the lock is used (Linux, this Python)."""
    if not marker:
        return True
    return Requirement(f"x; {marker}").marker.evaluate(default_environment())  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def pins() -> dict[str, Pin]:
    return parse_lock(LOCK.read_text())


def disagreements(pins: dict[str, Pin], groups: dict[str, list[Requirement]]) -> list[str]:
    """Where the lock and the declared requirements disagree, one line each."""
    problems = []
    for group, reqs in groups.items():
        for req in reqs:
            pin = pins.get(canonicalize_name(req.name))
            if pin is None:
                problems.append(f"{group}: {req} is not in the lock")
            elif not req.specifier.contains(pin.version, prereleases=True):
                problems.append(f"{group}: {req} but the lock pins {pin.version}")
    direct = {canonicalize_name(r.name) for reqs in groups.values() for r in reqs}
    for name, pin in sorted(pins.items()):
        asked = any(v.startswith(("station-kiosk", "-r requirements/build.in")) for v in pin.via)
        if asked and name not in direct:
            problems.append(f"the lock still has {name}, which pyproject.toml no longer asks for")
    return problems


def test_the_lock_and_pyproject_agree(pins: dict[str, Pin]) -> None:
    problems = disagreements(pins, declared())
    assert not problems, "run scripts/lock:\n" + "\n".join(problems)


def test_a_disagreement_is_found() -> None:
    """The check above can fail: a pin outside the range, a requirement missing, one dropped."""
    text = LOCK.read_text()
    groups = declared()
    ruff = parse_lock(text)["ruff"].version
    bumped = parse_lock(text.replace(f"ruff=={ruff}", "ruff==0.0.1", 1))
    assert disagreements(bumped, groups) == [f"dev: ruff=={ruff} but the lock pins 0.0.1"]
    missing = parse_lock(text)
    del missing["pillow"]
    assert disagreements(missing, groups) == ["runtime: pillow>=10 is not in the lock"]
    dropped = {k: v for k, v in groups.items()}
    dropped["runtime"] = [r for r in groups["runtime"] if r.name != "orjson"]
    assert disagreements(parse_lock(text), dropped) == [
        "the lock still has orjson, which pyproject.toml no longer asks for"
    ]


def test_every_pin_is_hashed_and_has_a_reason(pins: dict[str, Pin]) -> None:
    assert len(pins) > 50
    for pin in pins.values():
        assert pin.hashes, f"{pin.name} has no hash"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in pin.hashes), pin.name
        assert pin.via, f"{pin.name}: nothing in the lock asks for it"


def test_tools_that_judge_the_code_are_pinned_exactly_in_pyproject() -> None:
    dev = {canonicalize_name(r.name): r for r in declared()["dev"]}
    for tool in EXACT:
        spec = list(dev[tool].specifier)
        assert len(spec) == 1 and spec[0].operator == "==", f"{tool}: {dev[tool]} is not exact"


def test_bootstrap_installs_the_lock_with_hashes_checked() -> None:
    script = (REPO / "scripts" / "bootstrap").read_text()
    installs = [ln for ln in script.splitlines() if "pip install" in ln or ln.strip() == "-e ."]
    assert "LOCK=requirements/lock.txt" in script
    assert any("--require-hashes" in ln for ln in installs)
    assert 'cat "$LOCK" pyproject.toml | sha256sum' in script  # the stamp is keyed on both
    assert "pip install -q --upgrade" not in script  # nothing newer than the lock


def test_this_environment_is_the_lock(pins: dict[str, Pin]) -> None:
    """What bootstrap installed is what the lock says (a stale .venv is caught here)."""
    wrong = []
    for pin in pins.values():
        if not applies(pin.marker):
            continue
        try:
            installed = Version(metadata.version(pin.name))
        except metadata.PackageNotFoundError:
            wrong.append(f"{pin.name} {pin.version} is not installed")
            continue
        if installed != pin.version:
            wrong.append(f"{pin.name}: installed {installed}, locked {pin.version}")
    assert not wrong, "run scripts/bootstrap:\n" + "\n".join(wrong)


def imported_modules(folder: Path) -> set[str]:
    local = {p.stem for p in folder.rglob("*.py")}  # a test's helper module beside it
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in FIRST_PARTY | local}


@pytest.mark.parametrize(
    ("folders", "groups"),
    [
        (("flows", "statedir", "drivers", "fleet", "kiosk", "sandbox", "assets"), ("runtime",)),
        (("tests", "bench", "faults"), ("runtime", "dev")),
    ],
    ids=["product", "tests-bench-faults"],
)
def test_every_imported_package_is_declared(
    folders: tuple[str, ...], groups: tuple[str, ...]
) -> None:
    names = {canonicalize_name(r.name) for g in groups for r in declared()[g]}
    providers = metadata.packages_distributions()
    undeclared = []
    for folder in folders:
        for module in sorted(imported_modules(REPO / folder)):
            dists = {canonicalize_name(d) for d in providers.get(module, [])}
            if not dists & names:
                undeclared.append(f"{folder}: import {module} (from {sorted(dists) or '?'})")
    assert not undeclared, "declare these in pyproject.toml:\n" + "\n".join(undeclared)
