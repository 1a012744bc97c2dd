#!/usr/bin/env python3
"""Load test for `forma serve` (stdlib only): N concurrent clients send streamed completions of a
given prompt length and token budget; reports aggregate generated tokens/s, time to first token and
time per output token (p50/p99), and the server's peak memory (VmHWM from /proc/PID/status when
--pid is given or the server runs on this machine and is found by its port).

  bench/serve_bench.py --url http://127.0.0.1:8000 --model NAME --clients 1,8,32 --prompt-tokens 128 --max-tokens 64
  bench/serve_bench.py --url ... --model NAME --soak 60 --clients 64       # 64 clients for 60 s

Prompts are token-id lists (random ids below --vocab, seeded), so the prompt length is exact and no
tokenizer is needed; ignore_eos (an extension forma serve and vLLM accept) keeps every request at its
token budget."""
import argparse
import json
import os
import random
import statistics
import threading
import time
import urllib.request


def percentile(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[k]


def one_request(args, prompt, rng_seed):
    """(ttft s, [inter-token gaps s], tokens, total s) of one streamed completion."""
    body = {"model": args.model, "prompt": prompt, "max_tokens": args.max_tokens, "temperature": args.temperature,
            "seed": rng_seed, "stream": True, "ignore_eos": True, "stream_options": {"include_usage": True}}
    headers = {"Content-Type": "application/json"}
    if args.api_key:
        headers["Authorization"] = "Bearer " + args.api_key
    req = urllib.request.Request(args.url + "/v1/completions", data=json.dumps(body).encode(), headers=headers)
    start = time.perf_counter()
    first = None
    last = start
    gaps = []
    tokens = 0
    with urllib.request.urlopen(req, timeout=600) as r:
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            if chunk.get("choices"):
                now = time.perf_counter()
                if first is None:
                    first = now - start
                else:
                    gaps.append(now - last)
                last = now
    return first if first is not None else float("nan"), gaps, tokens, time.perf_counter() - start


def find_pid(port):
    """The pid of the process listening on `port` (Linux /proc), or None."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                for line in f.readlines()[1:]:
                    parts = line.split()
                    if int(parts[1].split(":")[1], 16) == port and parts[3] == "0A":
                        inodes.add(parts[9])
        except OSError:
            pass
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(pid)
        except OSError:
            continue
    return None


def vm_hwm_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, TypeError):
        pass
    return float("nan")


def run(args, clients, duration=None):
    """`clients` threads; each sends --requests-per-client requests, or loops for `duration` s."""
    ttfts, gaps, tokens, errors = [], [], [0], [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + duration if duration else None

    def client(i):
        rng = random.Random(args.seed + i)
        n = 0
        while (stop_at and time.perf_counter() < stop_at) or (not stop_at and n < args.requests_per_client):
            prompt = [rng.randrange(3, args.vocab) for _ in range(args.prompt_tokens)]
            try:
                t, g, k, _ = one_request(args, prompt, args.seed + i * 1000 + n)
                with lock:
                    ttfts.append(t)
                    gaps.extend(g)
                    tokens[0] += k
            except Exception as e:  # noqa: BLE001 (a load test counts failures)
                with lock:
                    errors[0] += 1
                if args.verbose:
                    print("request failed:", e)
            n += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return {"clients": clients, "requests": len(ttfts), "errors": errors[0], "generated_tokens": tokens[0],
            "seconds": round(wall, 2), "tokens_per_s": round(tokens[0] / wall, 1),
            "ttft_p50_ms": round(percentile(ttfts, 50) * 1000, 1), "ttft_p99_ms": round(percentile(ttfts, 99) * 1000, 1),
            "tpot_p50_ms": round(percentile(gaps, 50) * 1000, 2), "tpot_p99_ms": round(percentile(gaps, 99) * 1000, 2)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--model", required=True, help="the served model name")
    p.add_argument("--api-key", default="")
    p.add_argument("--clients", default="1,8,32", help="comma-separated concurrency levels")
    p.add_argument("--prompt-tokens", type=int, default=128)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--requests-per-client", type=int, default=4)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--vocab", type=int, default=256, help="prompt ids are drawn from [3, vocab)")
    p.add_argument("--soak", type=float, default=0, help="seconds: hold the clients that long instead")
    p.add_argument("--pid", type=int, default=0, help="the server's pid for VmHWM (default: found by port)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="one JSON line per level")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    pid = args.pid or find_pid(int(args.url.rsplit(":", 1)[1].split("/")[0]))
    rows = []
    for clients in [int(c) for c in args.clients.split(",")]:
        row = run(args, clients, args.soak or None)
        row["server_vm_hwm_mib"] = round(vm_hwm_mib(pid), 1)
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)
    if not args.json:
        keys = list(rows[0])
        print("| " + " | ".join(keys) + " |")
        print("|" + "---|" * len(keys))
        for row in rows:
            print("| " + " | ".join(str(row[k]) for k in keys) + " |")
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
