"""The dependency rule of STYLE.md, checked on every import the package makes (function-local
ones included): which layer may import which, no import cycles, and no torch where a device or a
machine without PyTorch must run the code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "edgevision"

# Layer (module-name prefix below ``edgevision.``) -> the layers it may import, besides itself.
# Longest prefix wins, so ``data.datasets`` can be stricter or looser than ``data``.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "config": {"core"},
    "ops": {"core"},
    "data": {"core", "ops"},
    "models": {"core", "ops"},
    "assign": {"core", "ops", "models"},
    "losses": {"core", "ops", "models", "assign"},
    "eval": {"core", "ops", "data.formats"},  # COCO image ids come from the COCO reader
    "viz": {"core", "eval"},
    # Error breakdown, label noise, the HTML report: read records, detections and run folders.
    "analysis": {"core", "ops", "data", "eval", "viz"},
    "runtime": {"core"},
    "engine": {"core", "config", "viz"},
    "export": {"core", "ops", "runtime", "models"},
    "tools": {"core"},
    "tasks": {
        "core",
        "config",
        "ops",
        "data",
        "models",
        "assign",
        "losses",
        "eval",
        "viz",
        "runtime",
        "engine",
        "export",
        "analysis",
    },  # fmt: skip
    "bench": {"core", "config", "data", "models", "runtime", "engine", "export", "tasks"},
    "api": {
        "core",
        "config",
        "data",
        "models",
        "runtime",
        "engine",
        "export",
        "tasks",
        "bench",
        "analysis",
    },  # fmt: skip
    "demo": {"core", "data", "viz", "tasks", "api"},
    "cli": {"core", "config", "api", "demo"},
    "__main__": {"cli"},
    "": {"core", "api", "tasks"},  # the package face: lazy names only
}
# Modules that must never import torch, not even inside a function: they run on a device.
NEVER_TORCH = ("core", "runtime", "tools", "analysis")
# Modules whose import must not import torch (a function may, on the PyTorch-only path): the data
# commands, val / predict / bench of an .onnx, and the package face run where torch is absent.
TORCH_FREE_IMPORT = (
    "", "api", "cli", "bench", "config", "ops.boxes", "eval", "viz",
    "data.formats", "data.doctor", "data.synth", "data.anchors", "data.convert", "data.split",
    "data.stats", "engine.run_dir", "engine.task", "export.onnx", "export.quantize",
    "tasks", "tasks.base", "tasks.load",
    "tasks.predict", "tasks.detect", "tasks.detect.val", "tasks.detect.predict",
    "tasks.classify", "tasks.classify.val", "tasks.classify.predict", "tasks.detect.analyze",
    "analysis", "data.doctor.apply_review",
    "tasks.pose", "tasks.pose.val", "tasks.pose.predict", "eval.keypoints", "ops.keypoints",
    "data.sigmas", "data.autoanchor",
)  # fmt: skip


def _modules() -> dict[str, Path]:
    """``name`` relative to the package ("" for the face, "tasks.detect", "api") -> file."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> list[tuple[str, bool, int]]:
    """(imported name, at module level?, line) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    local = {
        id(node)
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(function)
    }
    annotations_only = {  # `if TYPE_CHECKING:` blocks never run
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test).endswith("TYPE_CHECKING")
        for node in ast.walk(block)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in annotations_only:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [(name, id(node) not in local, node.lineno) for name in names]
    return found


def _internal(name: str) -> str | None:
    """The edgevision module an imported name refers to, relative to the package, or None."""
    if name != "edgevision" and not name.startswith("edgevision."):
        return None
    name = name[len("edgevision.") :] if name != "edgevision" else ""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _layer(module: str, table) -> str:
    matches = [prefix for prefix in table if module == prefix or module.startswith(prefix + ".")]
    return max(matches, key=len) if matches else ""


def _edges() -> dict[str, set[tuple[str, int]]]:
    edges = {module: set() for module in MODULES}
    for module, path in MODULES.items():
        for name, _, line in _imports(path):
            target = _internal(name)
            if target is not None and target != module:
                edges[module].add((target, line))
    return edges


EDGES = _edges()


def test_every_module_is_in_a_layer():
    assert all(module == "" or _layer(module, ALLOWED) for module in MODULES)


def test_no_import_goes_against_the_dependency_rule():
    wrong = []
    for module, targets in EDGES.items():
        layer = _layer(module, ALLOWED)
        for target, line in sorted(targets):
            target_layer = _layer(target, ALLOWED)
            same = target_layer == layer or (layer and target.startswith(layer + "."))
            permitted = any(
                target == allowed or target.startswith(allowed + ".") for allowed in ALLOWED[layer]
            )
            if not (same or permitted):
                wrong.append(
                    f"edgevision/{MODULES[module].relative_to(PACKAGE)}:{line} -> {target}"
                )
    assert not wrong, "imports the dependency rule forbids:\n" + "\n".join(wrong)


def test_engine_and_export_name_no_task_module():
    offenders = [
        (module, target)
        for module, targets in EDGES.items()
        if module.startswith(("engine", "export"))
        for target, _ in targets
        if target.startswith(("tasks", "api", "bench"))
    ]
    assert not offenders


def test_there_is_no_import_cycle():
    graph = {module: {target for target, _ in targets} for module, targets in EDGES.items()}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("layer", NEVER_TORCH)
def test_device_layers_never_import_torch(layer):
    offenders = [
        f"{path.relative_to(PACKAGE)}:{line} {name}"
        for module, path in MODULES.items()
        if module == layer or module.startswith(layer + ".")
        for name, _, line in _imports(path)
        if name == "torch" or name.startswith("torch.")
    ]
    assert not offenders


def test_torch_free_modules_import_no_torch_at_module_level():
    """Statically, through the whole chain of module-level imports."""

    def module_level_targets(module: str) -> set[str]:
        return {name for name, top, _ in _imports(MODULES[module]) if top}

    offenders = []
    for start in TORCH_FREE_IMPORT:
        seen, pending = set(), [start]
        while pending:
            module = pending.pop()
            if module in seen:
                continue
            seen.add(module)
            for name in module_level_targets(module):
                if name == "torch" or name.startswith("torch."):
                    offenders.append(f"{start}: via {module}")
                target = _internal(name)
                if target is not None:  # importing a.b.c runs a/__init__ and a/b/__init__ too
                    parts = target.split(".") if target else []
                    pending += [".".join(parts[:i]) for i in range(len(parts) + 1)]
    assert not offenders, "\n".join(sorted(set(offenders)))
