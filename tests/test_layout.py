"""The package's architecture, read from the source with `ast`: layered sub-packages, each importing only
the layers below it, no import cycle (imports inside functions count), one job per module."""

import ast
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "keras_qa"
BACKENDS = ("jax", "tensorflow", "torch")
KERAS = ("keras", "keras_hub", "keras_nlp")
# Bottom to top; a module may import its own sub-package's modules and any lower layer's.
LAYERS = (
    ("errors", "files", "version"),
    ("data", "text", "runtime"),
    ("models",),
    ("checkpoints",),
    ("answering", "evaluation"),
    ("training", "serving"),
    # What the command lines share, and the drop-in pipeline's import path; then the command lines.
    ("cli", "hf_pipeline"),
    ("train", "predict", "serve", "export", "calibrate"),
    ("__init__",),
)
# The stages that only move plain data: no Keras, no backend.
PLAIN_DATA_LAYERS = ("data", "text", "errors", "files", "version")
# The only modules that may know which backend runs.
BACKEND_AWARE = ("runtime", "checkpoints.exporting")
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60


def modules(package=PACKAGE):
    """`{dotted name under keras_qa: path}` of every module; a package's `__init__` by its own name."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1] or ("__init__",)
        found[".".join(parts)] = path
    return found


def _outside_type_checking(tree):
    """The nodes of `tree`, less what `if TYPE_CHECKING:` blocks hold (never run)."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for child in ast.walk(node) if child is not node)
    return [node for node in ast.walk(tree) if id(node) not in skipped]


def imports(path):
    """`(line, full module name)` of every import in the file, at any depth of its code."""
    found = []
    for node in _outside_type_checking(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from keras_qa.checkpoints import saving` imports the module keras_qa.checkpoints.saving.
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def package_imports(package=PACKAGE):
    """`{module: {imported keras_qa module: first line}}`, names under keras_qa."""
    known = modules(package)
    graph = {}
    for name, path in known.items():
        edges = {}
        for line, imported in imports(path):
            if not imported.startswith("keras_qa"):
                continue
            target = imported.removeprefix("keras_qa").lstrip(".") or "__init__"
            while target not in known and "." in target:  # an imported name, not a module
                target = target.rsplit(".", 1)[0]
            if target in known and target != name:
                edges.setdefault(target, line)
        graph[name] = edges
    return graph


def import_cycle(graph):
    """One cycle of the graph as a list of modules, or None."""
    visiting, done = [], set()

    def visit(module):
        if module in visiting:
            return visiting[visiting.index(module) :] + [module]
        if module in done:
            return None
        visiting.append(module)
        for target in sorted(graph.get(module, ())):
            if target != "__init__" and (cycle := visit(target)):
                return cycle
        visiting.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        if module != "__init__" and (cycle := visit(module)):
            return cycle
    return None


def layer_of(module):
    top = module.split(".")[0]
    return next(rank for rank, layer in enumerate(LAYERS) if top in layer)


def test_the_rules_see_the_package():
    graph = package_imports()
    assert {"training.run", "train", "runtime.backend", "checkpoints.saving", "cli"} <= set(graph)
    assert "training.run" in graph["train"]
    assert "checkpoints.loading" in graph["answering.answerer"]
    # An import inside a function is an edge: the command line loads the answerer when called.
    assert "answering.answerer" in graph["cli"]


def test_every_module_belongs_to_a_layer():
    assert [
        module for module in modules() if not any(module.split(".")[0] in layer for layer in LAYERS)
    ] == []


def test_the_package_has_no_import_cycle():
    assert import_cycle(package_imports()) is None


def test_import_cycle_finds_a_circle():
    assert import_cycle({"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}}) == ["a", "b", "c", "a"]
    assert import_cycle({"a": {"b": 1}, "b": {}}) is None


def test_each_layer_imports_only_the_layers_below_it():
    upward = [
        f"{module} imports {target} (line {line})"
        for module, edges in package_imports().items()
        for target, line in edges.items()
        if target.split(".")[0] != module.split(".")[0] and layer_of(target) >= layer_of(module)
    ]
    assert upward == []


def test_only_the_train_command_line_imports_the_trainer():
    importers = [
        module
        for module, edges in package_imports().items()
        if module.split(".")[0] != "training" and any(t.startswith("training") for t in edges)
    ]
    assert importers == ["train"]


def test_plain_data_layers_import_neither_keras_nor_a_backend():
    offenders = {
        module: sorted({name.split(".")[0] for _, name in imports(path)} & {*KERAS, *BACKENDS})
        for module, path in modules().items()
        if module.split(".")[0] in PLAIN_DATA_LAYERS
    }
    assert {module: found for module, found in offenders.items() if found} == {}


def test_importing_keras_qa_and_its_plain_data_layers_loads_no_keras_and_no_backend():
    plain = [m for m in modules() if m.split(".")[0] in PLAIN_DATA_LAYERS]
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nimport keras_qa\n"
            + "".join(f"import keras_qa.{module}\n" for module in plain)
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
    imported = {name.split(".")[0] for _, name in imports(modules()["runtime.allocator"])}
    assert not imported & {*KERAS, *BACKENDS, "numpy", "keras_qa"}


def names_a_backend(path):
    """Where the file imports a backend, compares with a backend's name or asks Keras for it."""
    places = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported = {node.module.split(".")[0]}
        else:
            imported = set()
        if imported & set(BACKENDS):
            places.append(f"line {node.lineno}: imports {sorted(imported & set(BACKENDS))}")
        elif isinstance(node, ast.Constant) and node.value in BACKENDS:
            places.append(f"line {node.lineno}: the string {node.value!r}")
        elif isinstance(node, ast.Attribute) and node.attr == "backend":
            if isinstance(node.value, ast.Attribute) and node.value.attr == "backend":
                places.append(f"line {node.lineno}: keras.backend.backend")
    return places


def test_only_the_runtime_and_export_name_a_backend():
    offenders = {
        module: places
        for module, path in modules().items()
        if (places := names_a_backend(path))
        and not any(module == aware or module.startswith(aware + ".") for aware in BACKEND_AWARE)
    }
    assert offenders == {}
    assert names_a_backend(modules()["runtime.backend"])


@pytest.mark.parametrize("module", sorted(modules()))
def test_modules_and_functions_are_short(module):
    path = modules()[module]
    text = path.read_text(encoding="utf-8")
    assert text.count("\n") <= MAX_MODULE_LINES, f"{path}: {text.count(chr(10))} lines"
    long_functions = [
        f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long_functions == []
