"""Load SQuAD-style question answering examples from any supported source.

Every source comes back in one shape, the Hugging Face "squad" schema, one dict per question, in the
source's order:

    {"id": str, "title": str, "context": str, "question": str,
     "answers": {"text": [str, ...], "answer_start": [int, ...]}}

SQuAD v2.0 questions marked `is_impossible` have empty answer lists.

Sources:
- `"bundled"`: the official SQuAD v1.1 dev set shipped inside keras-qa (CC BY-SA 4.0), with the splits
  `"train"`, `"eval"`, `"all"` and their `"-long"` and `"-v2"` variants (`keras_qa.data.bundled`).
- a path to a SQuAD-format `.json` or `.json.gz` file (v1.1 or v2.0); `split` is not used.
- a path to a flat `.jsonl` (also `.jsonl.gz`) or `.parquet` file in the Hugging Face "squad" schema.
- a Hugging Face dataset name such as `"squad"` or `"squad_v2"`, loaded through `datasets` (online only);
  `split` is required (`"train"`, `"validation"`, slices such as `"train[:1000]"`).
"""

import os

from keras_qa.data.bundled import BUNDLED_SOURCES, load_bundled
from keras_qa.data.formats import load_hub_dataset, load_jsonl, load_parquet, load_squad_json


def load_examples(source, split=None, on_error="raise"):
    """Load question answering examples as a list of dicts in the Hugging Face "squad" schema.

    Args:
        source: `"bundled"`, a path to a `.json`, `.json.gz`, `.jsonl`, `.jsonl.gz` or `.parquet` file,
            or a Hugging Face dataset name (`"squad"`, `"squad_v2"`, ...).
        split: for `"bundled"`, `"train"`, `"eval"` or `None`/`"all"`; for a Hugging Face dataset, the
            split to load (required); ignored for files.
        on_error: `"raise"` (default) stops at the first malformed record with a `DataFormatError` that
            names the file and the record; `"skip"` drops malformed records and warns with how many
            were dropped and why. Malformed means anything a later stage could not use: a missing or
            empty id, context or question, a title that is not a string, text holding a lone
            surrogate (not Unicode), `is_impossible` that is not true or false, an answer that is not
            found at its `answer_start`, or a line that is not UTF-8 JSON. A `.jsonl` / `.jsonl.gz`
            file damaged or cut short midway keeps, under `"skip"`, the records before the damage,
            and the warning names the line where reading stopped. A file that cannot be read at all
            is a `DataFormatError` either way.

    Returns:
        A list of example dicts, one per question, in the source's order.

    Example:
    >>> examples = load_examples("bundled", split="eval")
    >>> len(examples)
    1988
    >>> sorted(examples[0])
    ['answers', 'context', 'id', 'question', 'title']
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    source = os.fspath(source)
    if source in BUNDLED_SOURCES:
        return load_bundled(split, on_error)
    lowered = source.lower()
    if lowered.endswith((".json", ".json.gz")):
        return load_squad_json(source, on_error)
    if lowered.endswith((".jsonl", ".jsonl.gz")):
        return load_jsonl(source, on_error)
    if lowered.endswith(".parquet"):
        return load_parquet(source, on_error)
    if os.path.exists(source):
        raise ValueError(
            f"{source}: unsupported file type. Use .json / .json.gz (SQuAD format), "
            ".jsonl / .jsonl.gz or .parquet (Hugging Face 'squad' schema)."
        )
    return load_hub_dataset(source, split, on_error)
