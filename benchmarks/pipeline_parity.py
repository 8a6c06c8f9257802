"""keras-qa's drop-in pipeline against transformers' own question-answering pipeline, on a real model.

    nox -s pipeline_parity -- --collect-only -q    # once: the environment with transformers 4.57.1
    .nox/pipeline_parity/bin/python benchmarks/pipeline_parity.py --model runs/quickstart \
        [--split eval] [--limit N] [--quantize int8] [--output pipeline_parity.json]

The model (a directory written by keras_qa.train) is exported with `--format huggingface` into a
temporary folder; transformers 4's `pipeline("question-answering")` (PyTorch) and
`keras_qa.hf_pipeline.pipeline` (Keras) answer every question of a bundled split over that folder, with
the pipeline's defaults and with `top_k=3`; a call agrees when the answers, starts and ends are equal
and the scores within 1e-3 relative, and gives the same spans when the answers, starts and ends are
equal. With `--quantize int8` keras-qa answers with its int8 copy (the `int8` extra in that
environment: `pip install onnx onnxruntime`), against transformers in float32. Prints and writes the
agreement rates and the wall times.
"""

import argparse
import json
import os
import tempfile
import time

import keras_qa.cli  # noqa: F401 - quiets TensorFlow's logs before Keras loads it

OPTIONS = {"defaults": {}, "top_k=3": {"top_k": 3}}


def same(expected, found, scores=True):
    expected, found = ([expected], [found]) if isinstance(expected, dict) else (expected, found)
    if not isinstance(found, list) or len(expected) != len(found):
        return False
    return all(
        (a["answer"], a["start"], a["end"]) == (b["answer"], b["start"], b["end"])
        and (not scores or abs(a["score"] - b["score"]) <= 1e-3 * abs(a["score"]) + 1e-7)
        for a, b in zip(expected, found)
    )


def same_spans(expected, found):
    return same(expected, found, scores=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a directory written by keras_qa.train")
    parser.add_argument("--split", default="eval", help="a bundled split (default: eval)")
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--quantize", choices=["int8"], help="keras-qa answers in int8")
    parser.add_argument("--output", help="also write the rates here as JSON")
    args = parser.parse_args(argv)
    # transformers 4 would import TensorFlow and refuse Keras 3.
    os.environ.setdefault("USE_TF", "0")
    import transformers

    from keras_qa.answering.hf_pipeline import pipeline
    from keras_qa.data.examples import load_examples
    from keras_qa.export import export_model

    examples = load_examples("bundled", split=args.split)[: args.limit]
    report = {
        "model": args.model,
        "split": args.split,
        "questions": len(examples),
        "transformers": transformers.__version__,
        "keras_qa_quantize": args.quantize,
        "options": {},
    }
    with tempfile.TemporaryDirectory() as scratch:
        folder, difference = export_model(args.model, os.path.join(scratch, "hf"), "huggingface")
        report["export_max_logit_difference"] = difference
        reference = transformers.pipeline("question-answering", model=folder, tokenizer=folder)
        ours = pipeline("question-answering", model=folder, quantize=args.quantize)
        for name, options in OPTIONS.items():
            results, seconds = {}, {}
            for label, answer in (("transformers", reference), ("keras-qa", ours)):
                began = time.perf_counter()
                results[label] = [
                    answer(question=e["question"], context=e["context"], **options)
                    for e in examples
                ]
                seconds[label] = round(time.perf_counter() - began, 1)
            agree = sum(map(same, results["transformers"], results["keras-qa"]))
            spans = sum(map(same_spans, results["transformers"], results["keras-qa"]))
            report["options"][name] = {
                "agree": agree,
                "rate": round(agree / len(examples), 4),
                "same_spans": spans,
                "same_spans_rate": round(spans / len(examples), 4),
                "seconds": seconds,
            }
            print(
                f"{name}: {agree} of {len(examples)} calls agree ({agree / len(examples):.2%}), "
                f"{spans} give the same spans; transformers {seconds['transformers']} s, keras-qa "
                f"{seconds['keras-qa']} s"
            )
    if args.output:
        with open(args.output, "w", encoding="utf-8") as file:
            json.dump(report, file, indent=2)
    return report


if __name__ == "__main__":
    main()
