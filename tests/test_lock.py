"""requirements/lock.txt and pyproject.toml agree, and the environment is the lock.

``scripts/bootstrap`` installs exactly the lock (``pip --require-hashes``); ``scripts/lock``
writes it from pyproject.toml, and the per-role locks (``requirements/terminal.txt``,
``requirements/console.txt``) from it. Someone who edits one and forgets the other gets one clear
failure here instead of two machines resolving different versions:

- every requirement of pyproject.toml (common, ``terminal``, ``console``, ``dev``,
  ``requirements/build*.in``) has a pin in the lock that satisfies it, and the lock holds no
  direct requirement pyproject.toml dropped;
- each role's lock pins what that role declares, with the lock's versions and hashes, and none
  of the other role's libraries;
- what each role's entry points import (``kiosk``; ``fleet`` and ``fleet console``) comes from
  a package declared for that role (the import graph, lazy imports included);
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
from typing import Any

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements" / "lock.txt"
BUILD_IN = (REPO / "requirements" / "build.in", REPO / "requirements" / "build-terminal.in")
ROLE_LOCKS = {role: REPO / "requirements" / f"{role}.txt" for role in ("terminal", "console")}
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


def read_in(path: Path) -> list[Requirement]:
    lines = (ln.split("#")[0].strip() for ln in path.read_text().splitlines())
    return [Requirement(ln) for ln in lines if ln]


def declared() -> dict[str, list[Requirement]]:
    """Each group's requirements; ``dev``'s own ``station-kiosk[terminal,console]`` left out
    (the project asks for its two roles' groups, which are listed here themselves)."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    extras = project["optional-dependencies"]
    groups = {"runtime": [Requirement(r) for r in project["dependencies"]]}
    for extra in ("terminal", "console", "dev"):
        reqs = [Requirement(r) for r in extras[extra]]
        groups[extra] = [r for r in reqs if canonicalize_name(r.name) != "station-kiosk"]
    groups["build"] = read_in(BUILD_IN[0])
    groups["build-terminal"] = read_in(BUILD_IN[1])
    return groups


def role_groups(role: str) -> tuple[str, ...]:
    """The groups a role's lock installs: the common ones, its own, its build tools."""
    return ("runtime", role, "build") + (("build-terminal",) if role == "terminal" else ())


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
        asked = any(v.startswith(("station-kiosk", "-r requirements/build")) for v in pin.via)
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
    assert disagreements(missing, groups) == ["terminal: pillow>=10 is not in the lock"]
    dropped = {k: v for k, v in groups.items()}
    dropped["runtime"] = [r for r in groups["runtime"] if r.name != "orjson"]
    assert disagreements(parse_lock(text), dropped) == [
        "the lock still has orjson, which pyproject.toml no longer asks for"
    ]


def test_dev_installs_both_roles() -> None:
    """``pip install -e '.[dev]'`` is everything the tests need: both roles and the tools."""
    dev = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]["dev"]
    itself = [Requirement(r) for r in dev if Requirement(r).name == "station-kiosk"]
    assert [sorted(r.extras) for r in itself] == [["console", "terminal"]]


def role_problems(role: str, role_pins: dict[str, Pin], pins: dict[str, Pin]) -> list[str]:
    """Where a role's lock strays from the lock, misses what the role declares, or carries what
    only the other role declares."""
    groups = declared()
    problems = [p for p in disagreements(role_pins, {g: groups[g] for g in role_groups(role)})]
    problems = [p for p in problems if not p.startswith("the lock still has")]
    for name, pin in sorted(role_pins.items()):
        whole = pins.get(name)
        if whole is None or (whole.version, sorted(whole.hashes)) != (
            pin.version,
            sorted(pin.hashes),
        ):
            problems.append(f"{role}: {name}=={pin.version} is not the lock's pin")
    other = "console" if role == "terminal" else "terminal"
    mine = {canonicalize_name(r.name) for g in role_groups(role) for r in groups[g]}
    for req in groups[other] + groups["build-terminal"]:
        name = canonicalize_name(req.name)
        pin = role_pins.get(name)
        # urllib3 is the terminal's, and tuf needs it at the centre too: that is allowed
        needed = pin is not None and any(
            not v.startswith(("station-kiosk", "-r requirements/")) for v in pin.via
        )
        if pin is not None and name not in mine and not needed:
            problems.append(f"{role}: carries {name}, which only the {other} asks for")
    return problems


@pytest.mark.parametrize("role", sorted(ROLE_LOCKS))
def test_each_role_lock_is_the_lock_for_that_role_alone(role: str, pins: dict[str, Pin]) -> None:
    role_pins = parse_lock(ROLE_LOCKS[role].read_text())
    problems = role_problems(role, role_pins, pins)
    assert not problems, "run scripts/lock:\n" + "\n".join(problems)
    assert all(pin.hashes for pin in role_pins.values())


def test_a_stray_role_lock_is_found(pins: dict[str, Pin]) -> None:
    """The check above can fail: another version, the other role's library, a missing pin."""
    text = ROLE_LOCKS["console"].read_text()
    alembic = parse_lock(text)["alembic"].version
    moved = parse_lock(text.replace(f"alembic=={alembic}", "alembic==1.13.0", 1))
    assert role_problems("console", moved, pins) == [
        "console: alembic==1.13.0 is not the lock's pin"
    ]
    with_kivy = parse_lock(text) | {"kivy": pins["kivy"], "swig": pins["swig"]}
    assert role_problems("console", with_kivy, pins) == [
        "console: carries kivy, which only the terminal asks for",
        "console: carries swig, which only the terminal asks for",
    ]
    without = {k: v for k, v in parse_lock(text).items() if k != "uvicorn"}
    assert role_problems("console", without, pins) == ["console: uvicorn>=0.30 is not in the lock"]


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
        (
            ("flows", "statedir", "drivers", "fleet", "kiosk", "sandbox", "assets"),
            ("runtime", "terminal", "console"),
        ),
        (("tests", "bench", "faults"), ("runtime", "terminal", "console", "dev")),
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


PRODUCT = ("kiosk", "drivers", "flows", "statedir", "fleet", "sandbox")


def entry_modules(role: str) -> set[str]:
    """Where a role's commands start: all of ``kiosk`` on a terminal; at the centre ``fleet``'s
    CLI, the console, and what the CLI's parser names to run after parsing (``run="m:f"``)."""
    if role == "terminal":
        return {"kiosk"}
    named = set()
    for parser in (REPO / "fleet" / "cli").glob("parser*.py"):
        named |= set(re.findall(r'run="([\w.]+):', parser.read_text()))
    assert "fleet.simulate.process" in named  # the pattern still finds them
    return {"fleet.cli", "fleet.console"} | named


@pytest.fixture(scope="module")
def graph() -> Any:
    import grimp

    # what runs: imports under TYPE_CHECKING are left out (no cache folder written here)
    return grimp.build_graph(
        *PRODUCT, include_external_packages=True, exclude_type_checking_imports=True, cache_dir=None
    )


def role_imports(graph: Any, starts: set[str]) -> dict[str, str]:
    """Every third-party top-level module reached from ``starts``, function-level imports
    included, each with one first-party module that imports it."""
    todo = [m for s in starts for m in {s} | graph.find_descendants(s)]
    seen: set[str] = set()
    external: dict[str, str] = {}
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            top = imported.split(".")[0]
            if top in PRODUCT or top == "assets":
                todo.append(imported)
            elif top not in sys.stdlib_module_names:
                external.setdefault(top, module)
    return external


@pytest.mark.parametrize("role", ["terminal", "console"])
def test_what_a_role_imports_is_declared_for_it(role: str, graph: Any) -> None:
    """A terminal installed with ``[terminal]`` alone (a console with ``[console]``) has every
    library its commands import: the other role's group is not there to lean on."""
    names = {canonicalize_name(r.name) for g in ("runtime", role) for r in declared()[g]}
    providers = metadata.packages_distributions()
    found = role_imports(graph, entry_modules(role))
    assert ("kivy" in found) == (role == "terminal")  # the walk does reach into the UI
    assert ("sqlalchemy" in found) == (role == "console")
    undeclared = []
    for module, importer in sorted(found.items()):
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        if not dists & names:
            undeclared.append(f"{importer}: import {module} (from {sorted(dists) or '?'})")
    assert not undeclared, f"declare these in [{role}] or the common dependencies:\n" + "\n".join(
        undeclared
    )
