"""Latency and robustness of `python -m keras_qa.serve` on loopback.

    python benchmarks/latency.py --model runs/quickstart [--requests 100] [--mixed 1000]

Starts the server in its own process on a free loopback port, then:
1. sends one question over a context of about 300 tokens (a bundled eval article's paragraphs) `--requests`
   times, one after another, and reports p50 / p95 / max of the wall time each request took;
2. sends `--mixed` requests from 8 threads at once, cycling through valid, empty-question, oversized
   (2 MB), non-JSON and wrong-type bodies, and checks that every valid one got 200 with the same answer,
   every other one its 4xx, and that the server process is the one started (no restart) and healthy.
Prints a Markdown summary and writes `latency.json` to `--output-dir`.
"""

import argparse
import concurrent.futures
import json
import os
import socket
import statistics
import subprocess
import sys
import time

import httpx

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def context_of_about(tokens, tokenizer):
    """A question and a context of about `tokens` tokens from the bundled eval split."""
    import keras_qa

    examples = keras_qa.load_examples("bundled", split="eval")
    paragraphs, seen = [], set()
    for example in examples:
        if example["context"] not in seen:
            seen.add(example["context"])
            paragraphs.append(example)
    first = paragraphs[0]
    words = []
    for paragraph in paragraphs:
        words += paragraph["context"].split()
        if len(tokenizer.encode([" ".join(words)])[0][0]) >= tokens:
            break
    while len(tokenizer.encode([" ".join(words)])[0][0]) > tokens:
        words.pop()
    return first["question"], " ".join(words)


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a directory written by keras_qa.train")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--mixed", type=int, default=1000)
    parser.add_argument("--context-tokens", type=int, default=300)
    parser.add_argument("--dtype", help="the server's --dtype (default: the model's own)")
    parser.add_argument("--output-dir", default="benchmarks/results")
    args = parser.parse_args()

    import keras_qa

    tokenizer = keras_qa.load_tokenizer(args.model)
    question, context = context_of_about(args.context_tokens, tokenizer)
    tokens = len(tokenizer.encode([context])[0][0])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "keras_qa.serve", "--model", args.model, "--port", str(port)]
    server = subprocess.Popen(
        command + (["--dtype", args.dtype] if args.dtype else []),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        began = time.perf_counter()
        while True:
            if server.poll() is not None:
                raise SystemExit(f"the server exited: {server.stderr.read()[-3000:]}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.perf_counter() - began > 600:
                raise SystemExit("the server did not come up in 10 minutes")
            time.sleep(0.2)
        startup = time.perf_counter() - began
        health = httpx.get(url + "/health").json()
        backend = health["backend"]

        valid = {"question": question, "context": context}
        with httpx.Client(timeout=60) as client:
            for _ in range(5):  # warm-up: connection, first shapes
                reference = client.post(url + "/answer", json=valid).json()
            latencies = []
            for _ in range(args.requests):
                began = time.perf_counter()
                response = client.post(url + "/answer", json=valid)
                latencies.append(1000 * (time.perf_counter() - began))
                assert response.status_code == 200, response.text

        bodies = {
            "valid": (json.dumps(valid), 200),
            "empty": (json.dumps({"question": " ", "context": context}), 422),
            "oversized": (json.dumps({"question": question, "context": "x" * 2_000_000}), 413),
            "not json": ('{"question": "unfinished', 400),
            "wrong type": (json.dumps({"question": 42, "context": context}), 422),
        }
        kinds = list(bodies)

        def send(index):
            kind = kinds[index % len(kinds)]
            try:
                response = httpx.post(
                    url + "/answer",
                    content=bodies[kind][0],
                    headers={"content-type": "application/json"},
                    timeout=120,
                )
            except httpx.TransportError as error:
                return kind, None, repr(error)
            return kind, response.status_code, response.text

        began = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(send, range(args.mixed)))
        mixed_seconds = time.perf_counter() - began
        counts, failures = {}, []
        for kind, status, text in outcomes:
            counts.setdefault(kind, {}).setdefault(str(status), 0)
            counts[kind][str(status)] += 1
            if status != bodies[kind][1]:
                failures.append((kind, status, text[:200]))
            elif kind == "valid" and json.loads(text)["answer"] != reference["answer"]:
                failures.append((kind, status, "a different answer: " + text[:200]))
        alive = server.poll() is None
        healthy = alive and httpx.get(url + "/health").status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=60)

    result = {
        "backend": backend,
        "dtype_policy": health["dtype_policy"],
        "model": os.path.abspath(args.model),
        "context_tokens": tokens,
        "answer": reference,
        "startup_seconds": startup,
        "requests": args.requests,
        "p50_ms": statistics.median(latencies),
        "p95_ms": percentile(latencies, 0.95),
        "max_ms": max(latencies),
        "mixed_requests": args.mixed,
        "mixed_seconds": mixed_seconds,
        "mixed_counts": counts,
        "mixed_failures": failures,
        "server_alive_same_process": alive,
        "server_healthy_after": healthy,
    }
    os.makedirs(args.output_dir, exist_ok=True)
    name = f"latency-{backend}-{health['dtype_policy']}.json"
    with open(os.path.join(args.output_dir, name), "w") as file:
        json.dump(result, file, indent=2)
    print(
        f"backend {backend} ({health['dtype_policy']}); one question over a {tokens}-token "
        f"context, {args.requests} requests one after another: p50 {result['p50_ms']:.1f} ms, "
        f"p95 {result['p95_ms']:.1f} ms, "
        f"max {result['max_ms']:.1f} ms (answer {reference['answer']!r})\n"
        f"{args.mixed} mixed requests from 8 threads in {mixed_seconds:.1f} s: {counts}; "
        f"{len(failures)} unexpected; server alive (same process): {alive}, healthy after: {healthy}"
    )
    if failures or not healthy:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
