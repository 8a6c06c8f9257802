"""Abandoned long requests, deep JSON and memory against `python -m keras_qa.serve` on loopback.

    python benchmarks/server_soak.py --model runs/quickstart [--long-chars 100000] [--abandon 4]
        [--soak 300] [-- --max-request-windows 256 ...]

Starts the server in its own process on a free loopback port (flags after `--` go to it), then:
1. times one short question, and one question over a `--long-chars` context (the model time of one
   long request), each alone;
2. sends `--abandon` long requests at once whose clients give up after `--give-up` seconds, then
   times a short question sent right after they gave up: the server should not answer the abandoned
   ones before it (at most the long request already in the model, split into turns, delays it);
3. posts a body of 100,000 nested `[` (the status and whether the answer is JSON);
4. sends `--soak` mixed requests (short, long given up on, empty, not JSON) from 8 threads and reads
   the server's RSS (from /proc) after the warm-up, after the abandoned requests and after the soak;
5. counts the server's log lines and tracebacks (one line per client that went away is expected).
Prints a summary and writes `server_soak.json` to `--output-dir`. Every request goes to 127.0.0.1
and every loop is bounded.
"""

import argparse
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import time

import httpx

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def long_context(chars):
    """About `chars` characters of the bundled eval articles' paragraphs, joined."""
    import keras_qa

    paragraphs, seen, total = [], set(), 0
    for example in keras_qa.load_examples("bundled", split="eval"):
        if example["context"] not in seen and total < chars:
            seen.add(example["context"])
            paragraphs.append(example["context"])
            total += len(example["context"]) + 1
    return " ".join(paragraphs)[:chars]


def rss_mb(pid):
    """The resident memory of process `pid`, in MB (VmRSS in /proc)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def start_server(model, extra):
    port = free_port()
    command = [sys.executable, "-m", "keras_qa.serve", "--model", model, "--port", str(port)]
    server = subprocess.Popen(
        command + extra, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    began = time.perf_counter()
    while time.perf_counter() - began < 600:
        if server.poll() is not None:
            raise SystemExit(f"the server exited: {server.stderr.read()[-3000:]}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return server, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.terminate()
    raise SystemExit("the server did not come up in 10 minutes")


def post(url, body, timeout):
    """`(status, seconds, text)`; status None when the client gave up or the connection failed."""
    began = time.perf_counter()
    try:
        response = httpx.post(url + "/answer", json=body, timeout=timeout)
    except httpx.TransportError:
        return None, time.perf_counter() - began, ""
    return response.status_code, time.perf_counter() - began, response.text


def abandon_then_short(url, long_body, short_body, count, give_up):
    """Send `count` long requests that give up after `give_up` s; time a short one sent after."""
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        given_up = list(pool.map(lambda _: post(url, long_body, give_up), range(count)))
    status, seconds, _ = post(url, short_body, 600)
    return {
        "abandoned_statuses": [outcome[0] for outcome in given_up],
        "short_after_status": status,
        "short_after_seconds": seconds,
    }


def soak(url, bodies, count, give_up):
    """`count` requests cycling through `bodies` ({kind: body}) from 8 threads: statuses per kind."""
    kinds = list(bodies)

    def send(index):
        kind = kinds[index % len(kinds)]
        body = bodies[kind]
        timeout = give_up if kind == "long, given up on" else 120
        if isinstance(body, str):
            try:
                response = httpx.post(url + "/answer", content=body, timeout=timeout)
                return kind, response.status_code
            except httpx.TransportError:
                return kind, None
        return kind, post(url, body, timeout)[0]

    counts = {}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for kind, status in pool.map(send, range(count)):
            counts.setdefault(kind, {}).setdefault(str(status), 0)
            counts[kind][str(status)] += 1
    return counts


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a directory written by keras_qa.train")
    parser.add_argument("--long-chars", type=int, default=100_000)
    parser.add_argument("--abandon", type=int, default=4, help="long requests given up on")
    parser.add_argument("--give-up", type=float, default=1.0, help="seconds a client waits")
    parser.add_argument("--soak", type=int, default=300, help="mixed requests (0: none)")
    parser.add_argument("--output-dir", default="benchmarks/results")
    parser.add_argument("server_flags", nargs="*", help="flags for the server, after --")
    return parser.parse_args()


def measure(args, server, url):
    """Every measurement of the module docstring, against the running server."""
    short = {"question": "Which team won?", "context": "The Denver Broncos won the game 24-10."}
    long = {"question": "Which team won?", "context": long_context(args.long_chars)}
    result = {"health_before": httpx.get(url + "/health").json()}
    for _ in range(3):  # warm-up: connection, first shapes
        post(url, short, 600)
    result["short_alone_seconds"] = post(url, short, 600)[1]
    status, result["long_alone_seconds"], _ = post(url, long, 600)
    result["long_alone_status"] = status
    result["rss_mb_after_warmup"] = rss_mb(server.pid)
    result |= abandon_then_short(url, long, short, args.abandon, args.give_up)
    result["rss_mb_after_abandoned"] = rss_mb(server.pid)
    deep = httpx.post(url + "/answer", content="[" * 100_000, timeout=60)
    result["deep_json"] = {"status": deep.status_code, "body": deep.text[:120]}
    if args.soak:
        bodies = {
            "short": short,
            "long, given up on": long,
            "empty": {"question": " ", "context": "x"},
            "not json": '{"question": ',
        }
        began = time.perf_counter()
        result["soak_counts"] = soak(url, bodies, args.soak, args.give_up)
        result["soak_seconds"] = time.perf_counter() - began
        result["rss_mb_after_soak"] = rss_mb(server.pid)
    time.sleep(2)  # let the server finish logging
    result["health_after"] = httpx.get(url + "/health").json()
    return result


def main():
    args = parse_arguments()
    server, url = start_server(args.model, args.server_flags)
    try:
        result = measure(args, server, url)
    finally:
        server.terminate()
        _, log = server.communicate(timeout=60)
    lines = log.splitlines()
    result["server_log_lines"] = len(lines)
    result["server_log_tracebacks"] = sum(line.startswith("Traceback") for line in lines)
    result["server_log_head"] = lines[:8]
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "server_soak.json"), "w") as file:
        json.dump(result, file, indent=2)
    print(
        json.dumps({key: value for key, value in result.items() if "health" not in key}, indent=2)
    )


if __name__ == "__main__":
    main()
