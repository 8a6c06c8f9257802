"""Featurisation and decoding figures on the bundled SQuAD v1.1 dev set (all 10,570 questions).

    python benchmarks/featurize.py [--model minilm] [--max-length 384] [--doc-stride 128] [--repeats 3]

Prints the number of windows, the share of answerable windows whose labelled span decodes to exactly the
answer text, the median time to featurise (tokenizer already built), the same time for the keras.io
example's recipe (Hugging Face fast tokenizer with overflow, then its Python labelling loop) where the
checkpoint has a tokenizer.json, and the time to decode answers for every window.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import keras_qa  # noqa: E402


def median_seconds(function, repeats):
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - begin)
    return statistics.median(times), result


def keras_io_recipe(examples, tokenizer_json, max_length, doc_stride):
    """Hugging Face's fast tokenizer with overflow, then the keras.io example's labelling loop."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(tokenizer_json)
    tokenizer.enable_truncation(max_length, stride=doc_stride, strategy="only_second")
    tokenizer.enable_padding(length=max_length)
    encodings = tokenizer.encode_batch([(e["question"].lstrip(), e["context"]) for e in examples])
    labels = []
    for example, encoding in zip(examples, encodings):
        start_char = example["answers"]["answer_start"][0]
        end_char = start_char + len(example["answers"]["text"][0])
        for window in [encoding, *encoding.overflowing]:
            sequence_ids, offsets = window.sequence_ids, window.offsets
            first = sequence_ids.index(1)
            last = len(sequence_ids) - 1 - sequence_ids[::-1].index(1)
            if not (offsets[first][0] <= start_char and offsets[last][1] >= end_char):
                labels.append((0, 0))
                continue
            while first < len(offsets) and offsets[first][0] <= start_char:
                first += 1
            while offsets[last][1] >= end_char:
                last -= 1
            labels.append((first - 1, last + 1))
    return labels


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--max-length", type=int, default=384)
    parser.add_argument("--doc-stride", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    examples = keras_qa.load_examples("bundled")
    tokenizer = keras_qa.load_tokenizer(args.model)
    seconds, features = median_seconds(
        lambda: keras_qa.prepare_eval_features(
            examples, tokenizer, args.max_length, args.doc_stride
        ),
        args.repeats,
    )
    train_seconds, _ = median_seconds(
        lambda: keras_qa.prepare_train_features(
            examples, tokenizer, args.max_length, args.doc_stride
        ),
        args.repeats,
    )
    windows = len(features["example_index"])
    labelled = np.flatnonzero(features["start_positions"] > 0)
    exact = 0
    for row in labelled:
        example = examples[features["example_index"][row]]
        offsets = features["offsets"][row]
        start, end = features["start_positions"][row], features["end_positions"][row]
        exact += example["context"][offsets[start, 0] : offsets[end, 1]] == (
            example["answers"]["text"][0].strip()
        )

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, *features["token_ids"].shape)).astype(np.float32)
    decode_seconds, _ = median_seconds(
        lambda: keras_qa.decode_answers(examples, features, logits[0], logits[1]), args.repeats
    )

    print(
        f"questions: {len(examples)}  windows: {windows}  (max_length {args.max_length}, "
        f"doc_stride {args.doc_stride}, {args.model})"
    )
    print(
        f"answerable windows: {len(labelled)}; labelled span decodes exactly to the answer: "
        f"{exact} ({100 * exact / len(labelled):.2f}%)"
    )
    print(
        f"prepare_train_features: {train_seconds:.2f} s   prepare_eval_features: {seconds:.2f} s "
        f"(median of {args.repeats})"
    )
    tokenizer_json = os.path.join(
        keras_qa.resolve_model_source(args.model).location, "tokenizer.json"
    )
    if os.path.isfile(tokenizer_json):
        reference_seconds, labels = median_seconds(
            lambda: keras_io_recipe(examples, tokenizer_json, args.max_length, args.doc_stride),
            args.repeats,
        )
        print(
            f"keras.io recipe (HF fast tokenizer + Python loop): {reference_seconds:.2f} s "
            f"for {len(labels)} windows"
        )
    print(f"decode_answers over all windows: {decode_seconds:.2f} s")


if __name__ == "__main__":
    main()
