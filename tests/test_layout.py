"""The package's layout rules, read from the source with `ast`: one job per module, data flowing one way."""

import ast
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "keras_qa"
BACKENDS = ("jax", "tensorflow", "torch")
KERAS = ("keras", "keras_hub", "keras_nlp")
# The stages that only move plain data: no Keras, no backend.
PLAIN_DATA_MODULES = ("data", "features", "postprocess", "metrics", "tokenizer", "layouts")
# The only modules that may know which backend runs (allocator: runtime's part that runs before Keras).
BACKEND_AWARE_MODULES = ("runtime", "allocator", "export")
MAX_FUNCTION_LINES = 60


def modules():
    return sorted(path.stem for path in PACKAGE.glob("*.py"))


def tree(module):
    return ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))


def imported_modules(module):
    """Every module `module` imports, at any depth of its code (top-level names and full paths)."""
    found = set()
    for node in ast.walk(tree(module)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            found.add(name)
            found.add(name.split(".")[0])
    return found


def names_a_backend(module):
    """Where `module` imports a backend, compares with a backend's name or asks Keras for it."""
    places = []
    for node in ast.walk(tree(module)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imported = imported_modules_of(node)
            if imported & set(BACKENDS):
                places.append(f"line {node.lineno}: imports {sorted(imported & set(BACKENDS))}")
        elif isinstance(node, ast.Constant) and node.value in BACKENDS:
            places.append(f"line {node.lineno}: the string {node.value!r}")
        elif isinstance(node, ast.Attribute) and node.attr == "backend":
            if isinstance(node.value, ast.Attribute) and node.value.attr == "backend":
                places.append(f"line {node.lineno}: keras.backend.backend")
    return places


def imported_modules_of(node):
    if isinstance(node, ast.Import):
        return {alias.name.split(".")[0] for alias in node.names}
    return {node.module.split(".")[0]} if node.module and node.level == 0 else set()


def test_the_rules_see_the_package():
    assert {"training", "train", "runtime", "saving", "pipeline", "server", "cli"} <= set(
        modules()
    )
    assert "keras_qa.training" in imported_modules("train")
    assert names_a_backend("runtime")


def test_only_the_train_command_line_imports_the_trainer():
    importers = [m for m in modules() if "keras_qa.training" in imported_modules(m)]
    assert importers == ["train"]


@pytest.mark.parametrize("module", PLAIN_DATA_MODULES)
def test_plain_data_modules_import_neither_keras_nor_a_backend(module):
    assert not imported_modules(module) & set(KERAS + BACKENDS)


def test_importing_the_plain_data_modules_loads_no_keras_and_no_backend():
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\n"
            + "".join(f"import keras_qa.{module}\n" for module in PLAIN_DATA_MODULES)
            + "print(sorted(set(sys.modules) & set(sys.argv[1:])))",
            *KERAS,
            *BACKENDS,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"


def test_the_allocator_imports_neither_keras_nor_numpy():
    # A command line restarts itself from it before Keras and numpy start their threads.
    assert not imported_modules("allocator") & {*KERAS, *BACKENDS, "numpy", "keras_qa"}


def test_only_the_runtime_allocator_and_export_name_a_backend():
    naming = {module: names_a_backend(module) for module in modules()}
    offenders = {
        module: places
        for module, places in naming.items()
        if places and module not in BACKEND_AWARE_MODULES
    }
    assert offenders == {}


def test_no_function_is_longer_than_a_page():
    long_functions = []
    for module in modules():
        for node in ast.walk(tree(module)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long_functions.append(f"{module}.{node.name}: {lines} lines")
    assert long_functions == []
