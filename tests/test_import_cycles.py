"""No import cycles between the project's modules.

An import edge A → B is part of a cycle when B leads back to A. Imports made only for type
checking do not count (they do not run). Imports inside functions do: they hid the console's
app ↔ route-module cycles until 2026-12-05.

The kiosk's cycles (runtime, maintenance, remote, tools, station, app: eight modules in a
circle) went when the test prints got one home (kiosk.shell.printing) instead of three.
"""

from __future__ import annotations

import grimp

PACKAGES = ("flows", "statedir", "drivers", "fleet", "kiosk", "sandbox")


def cyclic_edges(graph: grimp.ImportGraph) -> set[tuple[str, str]]:
    """Pairs of modules (sorted) with an import edge between them that is part of a cycle."""
    found = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.chain_exists(importer=imported, imported=module):
                a, b = sorted((module, imported))
                found.add((a, b))
    return found


def test_no_module_imports_itself_round_about() -> None:
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    new = sorted(cyclic_edges(graph))
    assert not new, "import cycles: " + "; ".join(
        " -> ".join(graph.find_shortest_chain(importer=a, imported=b) or (a, b))
        + " -> "
        + " -> ".join((graph.find_shortest_chain(importer=b, imported=a) or (b, a))[1:])
        for a, b in new
    )


def test_the_check_finds_a_cycle() -> None:
    graph = grimp.build_graph("fleet", exclude_type_checking_imports=True)
    graph.add_import(importer="fleet.protocol.models", imported="fleet.console.app")
    graph.add_import(importer="fleet.console.app", imported="fleet.protocol.models")
    assert ("fleet.console.app", "fleet.protocol.models") in cyclic_edges(graph)
