"""The import rules of the design, read from the source: lower layers never import higher ones.

DESIGN.md: ``_kernels`` knows nothing of Tensor, ``nn`` knows nothing of
``optim``, the second-half packages sit above ``nn``/``optim``/``train`` and
never below them, and optional libraries are imported lazily (inside the
function that needs them). The one documented upward reference is
``_kernels/reference/_optim.py``, whose twins import the optimizer class that
holds the update rule, at call time. And no two files import each other, directly
or around a ring, when nnlite loads.
"""
import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "nnlite")

SECOND_HALF = {"analysis", "monitor", "quantization", "transfer", "continual", "meta", "nas", "onnx",
               "distributed"}
LOWER = {"tensor", "autograd", "ops", "parameter", "nn", "optim", "_kernels", "io", "data", "train"}
OPTIONAL = {"ml_dtypes", "onnx", "onnxruntime", "tensorboardX", "tensorboard", "mpi4py", "matplotlib",
            "scipy", "torch", "jax", "sklearn", "mnist1d", "tqdm", "graphviz", "pydot"}


def python_files():
    for folder, _, files in os.walk(PACKAGE):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                yield os.path.relpath(path, ROOT)


def module_name(path):
    name = path[:-3].replace(os.sep, ".")
    return name.removesuffix(".__init__")


def is_module(name):
    """Whether ``name`` (``nnlite.nn.functional``) is a file of the package rather than a name inside one."""
    path = os.path.join(ROOT, *name.split("."))
    return os.path.isfile(path + ".py") or os.path.isfile(os.path.join(path, "__init__.py"))


def imports(path):
    """(absolute module imported, line, at call time?) for every import statement of ``path``."""
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    here = module_name(path).split(".")
    package = here if path.endswith("__init__.py") else here[:-1]
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = package[:len(package) - child.level + 1] if child.level else []
                target = ".".join(base + ([child.module] if child.module else []))
                for alias in child.names:   # "from .. import checks" imports nnlite._kernels.checks
                    submodule = f"{target}.{alias.name}"
                    found.append((submodule if is_module(submodule) else target, child.lineno, in_function))
            visit(child, inside)

    visit(tree, False)
    return found


def layer(module):
    parts = module.split(".")
    return parts[1] if parts[0] == "nnlite" and len(parts) > 1 else None


def test_kernels_import_nothing_above_them_but_the_optimizer_rules_at_call_time():
    wrong = []
    for path in python_files():
        if layer(module_name(path)) != "_kernels":
            continue
        for target, line, at_call_time in imports(path):
            if not target.startswith("nnlite.") or layer(target) == "_kernels":
                continue
            documented = (path == os.path.join("nnlite", "_kernels", "reference", "_optim.py")
                          and at_call_time and layer(target) == "optim")
            if not documented:
                wrong.append(f"{path}:{line} imports {target}")
    pyx = os.path.join(PACKAGE, "_kernels")
    for name in sorted(os.listdir(pyx)):
        if name.endswith((".pyx", ".pxd", ".pxi")):
            with open(os.path.join(pyx, name), encoding="utf-8") as f:
                for number, text in enumerate(f, 1):
                    match = re.match(r"\s*(?:from|c?import)\s+(nnlite\.\w+)", text)
                    if match and layer(match.group(1)) != "_kernels":
                        wrong.append(f"nnlite/_kernels/{name}:{number} imports {match.group(1)}")
    assert not wrong, "the kernel layer reaches up: " + "; ".join(wrong)


def test_the_optimizer_twins_do_reach_up_to_the_rules():
    # The exception above is real (it would otherwise excuse nothing): the twins run the classes' rules.
    targets = {t for t, _, at_call_time in imports(os.path.join("nnlite", "_kernels", "reference", "_optim.py"))
               if at_call_time}
    assert {"nnlite.optim.sgd", "nnlite.optim.adagrad", "nnlite.optim.rmsprop", "nnlite.optim.adam"} <= targets


def test_nn_knows_nothing_of_optim_and_lower_layers_nothing_of_the_second_half():
    wrong = []
    for path in python_files():
        here = layer(module_name(path))
        for target, line, _ in imports(path):
            there = layer(target)
            if here == "nn" and there == "optim":
                wrong.append(f"{path}:{line} imports {target}")
            if here in LOWER and there in SECOND_HALF:
                wrong.append(f"{path}:{line} imports {target}")
    assert not wrong, "a lower layer imports a higher one: " + "; ".join(wrong)


def test_optional_libraries_are_imported_inside_functions_only():
    eager = [f"{path}:{line} imports {target}" for path in python_files()
             for target, line, at_call_time in imports(path)
             if target.split(".")[0] in OPTIONAL and not at_call_time]
    assert not eager, "optional libraries imported when nnlite loads: " + "; ".join(eager)


# DESIGN.md allows one cycle, Tensor <-> ops: Tensor's operator methods (``x + y``, ``x.sum()``)
# need the ops, and the ops build Tensors. It is resolved in one place: nnlite/ops/__init__.py
# attaches the methods to Tensor, so tensor.py imports no op and that cycle never forms between
# files. No other cycle is allowed, so no cycle is excused.
ALLOWED_CYCLES = set()


def module_graph():
    """{module: the nnlite modules it imports when it is loaded}; imports inside functions run later."""
    modules = {module_name(path): path for path in python_files()}
    return {name: {target for target, _, at_call_time in imports(path)
                   if not at_call_time and target in modules and target != name}
            for name, path in modules.items()}


def cycles(graph):
    """Every set of two or more modules that import each other around a ring (Tarjan's components)."""
    order, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(module):
        order[module] = low[module] = len(order)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph[module]):
            if target not in order:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], order[target])
        if low[module] == order[module]:     # module is the first of its component to be reached
            component = set()
            while not component or member != module:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
            if len(component) > 1:
                found.append(frozenset(component))

    for module in sorted(graph):
        if module not in order:
            visit(module)
    return found


def test_cycles_finds_a_ring_and_nothing_else():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [frozenset("abc")]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_files():
    graph = module_graph()
    wrong = ["; ".join(f"{module} imports {', '.join(sorted(graph[module] & ring))}" for module in sorted(ring))
             for ring in cycles(graph) if ring not in ALLOWED_CYCLES]
    assert not wrong, "modules that import each other when nnlite loads: " + " | ".join(wrong)


def test_tensor_and_the_ops_meet_only_in_the_ops_package():
    # The resolution ALLOWED_CYCLES relies on: the ops import Tensor, tensor.py imports no op.
    graph = module_graph()
    assert "nnlite.tensor" in graph["nnlite.ops"]
    assert not {target for target in graph["nnlite.tensor"] if target.startswith("nnlite.ops")}
