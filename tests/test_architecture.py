"""Issue 10 item 5: the import graph. Every import of the project's code is read from the source
(deferred imports inside functions included, since they are dependencies all the same).

- No module imports, directly or round about, a module that imports it back.
- No feature package imports, round about, one that imports it back.
- The layers: app.core (with app.extensions) imports nothing of the features; app.wechat only
  core; app.identity only core and wechat; app.badge only core. A feature may import the layers
  below it."""
import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "miniprogram_api")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                if target.split(".")[0] not in PACKAGES:
                    continue
                resolved = resolve(target)
                # a package's own submodules, and the root packages (the app factory) are not edges
                if resolved and resolved != module and resolved not in PACKAGES:
                    edges[module].add(resolved)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, result, counter = {}, {}, set(), [], [], [0]
    for root in list(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    result.append(sorted(component))
    return result


def test_no_module_imports_itself_round_about():
    assert _cycles(_graph()) == []


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


ALLOWED_BELOW = {
    "app.core": {"app.core", "app.extensions"},
    "app.extensions": {"app.core", "app.extensions"},
    "app.wechat": {"app.core", "app.extensions", "app.wechat"},
    "app.identity": {"app.core", "app.extensions", "app.wechat", "app.identity"},
    # The badge reads what features publish (app.badge.facts) and never imports them.
    "app.badge": {"app.core", "app.extensions", "app.badge"},
}


def test_lower_layers_import_nothing_above_them():
    upward = sorted((module, target) for module, targets in _graph().items() for target in targets
                    if _package(module) in ALLOWED_BELOW and _package(target) not in ALLOWED_BELOW[_package(module)])
    assert upward == []


def test_no_package_imports_itself_round_about():
    """Between feature packages too (core and extensions are one base layer)."""
    packages: dict[str, set[str]] = defaultdict(set)
    base = {"app.core", "app.extensions"}
    for module, targets in _graph().items():
        source = "base" if _package(module) in base else _package(module)
        for target in targets:
            packages[source].add("base" if _package(target) in base else _package(target))
    for source in packages:
        packages[source].discard(source)
    assert _cycles(packages) == []


def test_the_graph_is_read():
    edges = _graph()
    assert "app.core.db" in edges["app.core.idempotency"]  # a plain import is seen
    assert "app.activities.audience" in edges["app.activities.checkin"]  # so is a deferred one
