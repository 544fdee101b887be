"""The import rules of the design, read from the source: lower layers never import higher ones.

DESIGN.md: ``_kernels`` knows nothing of Tensor, ``nn`` knows nothing of
``optim``, the second-half packages sit above ``nn``/``optim``/``train`` and
never below them, and optional libraries are imported lazily (inside the
function that needs them). The one documented upward reference is
``_kernels/reference/_optim.py``, whose twins import the optimizer class that
holds the update rule, at call time.
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
                    found.append((f"{target}.{alias.name}" if not child.module else target,
                                  child.lineno, in_function))
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
