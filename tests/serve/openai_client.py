"""The official openai client against `forma serve`: completions (greedy = `forma generate`),
chat (= `forma chat`), streaming, stop strings, seeds, echo logprobs (= transformers' log-softmax),
errors, auth, a full queue, a client that disconnects, and SIGTERM.
Usage: openai_client.py FORMA MODEL_DIR SCRATCH [api|limits]"""
import json
import subprocess
import sys
import threading
import time

import openai

from serve_util import Server, expect, forma_json, report

FORMA, MODEL, SCRATCH = sys.argv[1:4]
PART = sys.argv[4] if len(sys.argv) > 4 else "api"  # "api" or "limits" (auth and a full queue)
PROMPT = "The cat sat"


def check_completions(client):
    ref = forma_json(FORMA, "generate", "--model", MODEL, "--prompt", PROMPT, "--max-new-tokens", "12", "--json",
                     "--device", "cpu")
    print(f"forma generate: {ref['text']!r} ({ref['stop_reason']})", flush=True)
    r = client.completions.create(model="tiny", prompt=PROMPT, max_tokens=12, temperature=0)
    expect(r.choices[0].text == ref["text"], f"greedy text {r.choices[0].text!r} != forma generate {ref['text']!r}")
    expect(r.usage.completion_tokens == len(ref["output_ids"]), f"usage {r.usage} vs {len(ref['output_ids'])} ids")
    expect(r.usage.prompt_tokens == len(ref["prompt_ids"]), f"prompt tokens {r.usage.prompt_tokens}")
    expect(r.choices[0].finish_reason == ("length" if ref["stop_reason"] == "max_new_tokens" else "stop"),
           f"finish_reason {r.choices[0].finish_reason} for {ref['stop_reason']}")
    # The same prompt as token ids, and in a list with another prompt.
    ids = client.completions.create(model="tiny", prompt=ref["prompt_ids"], max_tokens=12, temperature=0)
    expect(ids.choices[0].text == ref["text"], "token-id prompt differs")
    both = client.completions.create(model="tiny", prompt=[PROMPT, "Hi"], max_tokens=12, temperature=0)
    expect([c.index for c in both.choices] == [0, 1] and both.choices[0].text == ref["text"], "list of prompts")

    # Streaming: the chunks join to the same text; usage comes last when asked.
    chunks = list(client.completions.create(model="tiny", prompt=PROMPT, max_tokens=12, temperature=0, stream=True,
                                            stream_options={"include_usage": True}))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    expect(text == ref["text"], f"streamed {text!r} != {ref['text']!r}")
    expect(chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == len(ref["output_ids"]),
           "usage chunk last")
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    expect(len(finishes) == 1, f"one finish_reason in the stream, got {finishes}")

    # Stop strings: cut before the first occurrence, finish_reason "stop".
    full = ref["text"]
    stop = full[4:6] if len(full) >= 6 else None
    expect(stop and stop.strip(), f"a stop string from {full!r}")
    if stop and stop.strip():
        s = client.completions.create(model="tiny", prompt=PROMPT, max_tokens=12, temperature=0, stop=[stop])
        expect(s.choices[0].text == full[: full.index(stop)], f"stop {stop!r}: {s.choices[0].text!r}")
        expect(s.choices[0].finish_reason == "stop", "finish_reason after a stop string")

    # Seeds fix sampled tokens; n samples of one request differ from each other's seeds.
    a = client.completions.create(model="tiny", prompt=PROMPT, max_tokens=16, temperature=1.0, seed=7, n=2)
    b = client.completions.create(model="tiny", prompt=PROMPT, max_tokens=16, temperature=1.0, seed=7, n=2)
    expect([c.text for c in a.choices] == [c.text for c in b.choices], "same seed, same samples")
    sampled = forma_json(FORMA, "generate", "--model", MODEL, "--prompt", PROMPT, "--max-new-tokens", "16", "--json",
                         "--device", "cpu", "--temperature", "1", "--seed", "7")
    expect(a.choices[0].text == sampled["text"], "seed 7 sample != forma generate --seed 7")
    return ref


def check_logprobs(client, ref):
    """Echo logprobs of a prompt (what lm-evaluation-harness asks) against transformers."""
    import torch
    from transformers import AutoModelForCausalLM

    ids = ref["prompt_ids"] + ref["output_ids"][:5]
    r = client.completions.create(model="tiny", prompt=ids, max_tokens=1, temperature=0, echo=True, logprobs=1)
    lp = r.choices[0].logprobs
    expect(lp.token_logprobs[0] is None and len(lp.token_logprobs) == len(ids) + 1, "echo logprobs shape")
    model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32)
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    ref_lp = torch.log_softmax(logits.double(), -1)
    for t in range(1, len(ids)):
        want = ref_lp[t - 1, ids[t]].item()
        expect(abs(lp.token_logprobs[t] - want) < 1e-4, f"logprob {t}: {lp.token_logprobs[t]} vs transformers {want}")
        expect(abs(max(lp.top_logprobs[t].values()) - ref_lp[t - 1].max().item()) < 1e-4, f"top logprob {t}")
    # The one generated token is the greedy continuation.
    expect(abs(lp.token_logprobs[-1] - ref_lp[-1].max().item()) < 1e-4, "generated token's logprob")


def check_chat(client):
    ref = forma_json(FORMA, "chat", "--model", MODEL, "--json", "--max-new-tokens", "10", "--device", "cpu",
                     "--system", "Be brief.", stdin="Hello there\n")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]
    r = client.chat.completions.create(model="tiny", messages=messages, max_tokens=10, temperature=0)
    expect(r.choices[0].message.content == ref["text"], f"chat {r.choices[0].message.content!r} != {ref['text']!r}")
    expect(r.usage.prompt_tokens == len(ref["prompt_ids"]), "chat prompt tokens = forma chat's")
    chunks = list(client.chat.completions.create(model="tiny", messages=messages, max_completion_tokens=10,
                                                 temperature=0, stream=True, stream_options={"include_usage": True}))
    expect(chunks[0].choices[0].delta.role == "assistant", "first chunk has the role")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    expect(text == ref["text"], f"streamed chat {text!r}")
    expect(chunks[-1].usage is not None and chunks[-1].choices == [], "usage chunk")
    lp = client.chat.completions.create(model="tiny", messages=messages, max_tokens=3, temperature=0, logprobs=True,
                                        top_logprobs=2)
    content = lp.choices[0].logprobs.content
    expect(len(content) == lp.usage.completion_tokens and all(len(c.top_logprobs) == 2 for c in content),
           "chat logprobs")
    expect(all(c.logprob == c.top_logprobs[0].logprob for c in content), "greedy token is the top alternative")


def check_errors(server, client):
    for kwargs, error, what in [
        (dict(model="gpt-4", prompt="x"), openai.NotFoundError, "unknown model"),
        (dict(model="tiny", prompt="x", max_tokens=-1), openai.BadRequestError, "negative max_tokens"),
        (dict(model="tiny", prompt="x", max_tokens=5000), openai.BadRequestError, "too many tokens"),
        (dict(model="tiny", prompt="x", temperature="hot"), openai.BadRequestError, "wrong type"),
    ]:
        try:
            client.completions.create(**kwargs)
            expect(False, f"{what}: accepted")
        except error as e:
            expect(isinstance(e.body, dict) and "message" in e.body, f"{what}: OpenAI error body, got {e.body}")
    status, body = server.raw("POST", "/v1/completions", b"{not json")
    expect(status == 400 and "error" in json.loads(body), f"bad JSON: {status} {body}")
    status, body = server.raw("POST", "/v1/completions", {"model": "tiny", "prompt": "x" * 100000})
    expect(status == 413 and json.loads(body)["error"]["message"], f"body over the limit: {status} {body[:200]}")
    status, body = server.raw("GET", "/v1/nothing")
    expect(status == 404 and "error" in json.loads(body), f"unknown path: {status}")
    status, _ = server.raw("GET", "/health")
    expect(status == 200, "still serving after bad requests")


def check_disconnect(server, client):
    """A client that goes away mid-stream: its request is cancelled, well before its token budget."""
    before = server.metric("forma_generation_tokens_total")
    stream = client.completions.create(model="tiny", prompt=PROMPT, max_tokens=900, temperature=0, stream=True,
                                       stop=None)
    next(iter(stream))
    stream.close()  # drops the connection
    for _ in range(600):
        if server.metric("forma_num_requests_running") == 0 and server.metric("forma_num_requests_waiting") == 0:
            break
        time.sleep(0.05)
    generated = server.metric("forma_generation_tokens_total") - before
    expect(generated < 900, f"a disconnected stream was not cancelled: {generated} tokens generated")
    print(f"disconnect: {generated:.0f} of 900 tokens generated before the cancel", flush=True)


def check_metrics(server):
    _, text = server.raw("GET", "/metrics")
    for name in ["forma_requests_total", "forma_time_to_first_token_seconds_bucket",
                 "forma_time_per_output_token_seconds_count", "forma_num_requests_waiting", "forma_kv_cache_usage_ratio"]:
        expect(name in text, f"/metrics lacks {name}")


def check_limits(tmp_model):
    """--api-key and a full queue (429), on a second server with one running and one waiting slot."""
    server = Server(FORMA, tmp_model, SCRATCH, "--api-key", "sesame", "--max-batch", "1", "--max-queue", "1")
    try:
        bad = openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0)
        try:
            bad.models.list()
            expect(False, "a wrong API key was accepted")
        except openai.AuthenticationError:
            pass
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="sesame", max_retries=0)
        expect([m.id for m in client.models.list().data] == ["tiny"], "models with the key")
        running = client.completions.create(model="tiny", prompt=PROMPT, max_tokens=900, temperature=0, stream=True)
        next(iter(running))  # admitted and decoding
        waiting = client.completions.create(model="tiny", prompt=PROMPT, max_tokens=900, temperature=0, stream=True)
        try:
            client.completions.create(model="tiny", prompt=PROMPT, max_tokens=5, temperature=0)
            expect(False, "a request beyond the queue was accepted")
        except openai.RateLimitError as e:
            expect(e.status_code == 429, "429")
        running.close()
        waiting.close()
    finally:
        expect(server.stop() == 0, "exit status after SIGTERM")


def main():
    if PART == "limits":
        check_limits(MODEL)
        return report(None)
    # Two compute threads: LibTorch's worker threads exist when SIGTERM comes, and must not take it.
    server = Server(FORMA, MODEL, SCRATCH, "--max-body-bytes", "65536", threads=2)
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        expect([m.id for m in client.models.list().data] == ["tiny"], "models.list")
        ref = check_completions(client)
        check_logprobs(client, ref)
        check_chat(client)
        check_errors(server, client)
        check_disconnect(server, client)
        check_metrics(server)
        # A second server on the same port: exit status 1, saying why.
        taken = subprocess.run([FORMA, "serve", "--model", MODEL, "--port", str(server.port), "--device", "cpu"],
                               capture_output=True, text=True, timeout=120)
        expect(taken.returncode == 1 and "cannot listen" in taken.stderr, f"port in use: {taken.returncode} {taken.stderr}")
        # SIGTERM while a request runs: it finishes (or is cancelled at the grace bound), exit 0.
        result = {}
        def slow():
            try:
                r = client.completions.create(model="tiny", prompt=PROMPT, max_tokens=200, temperature=0)
                result["tokens"] = r.usage.completion_tokens
            except Exception as e:  # noqa: BLE001
                result["error"] = repr(e)
        t = threading.Thread(target=slow)
        t.start()
        for _ in range(1200):  # until the engine runs it (then SIGTERM must let it finish)
            if not t.is_alive() or server.metric("forma_num_requests_running") + server.metric("forma_num_requests_waiting") > 0:
                break
            time.sleep(0.01)
        code = server.stop()
        t.join()
        expect(code == 0, f"forma serve exited with {code} after SIGTERM")
        expect("tokens" in result, f"the request running at SIGTERM was answered: {result}")
    finally:
        if server.proc.poll() is None:
            server.stop()
    return report(server)


if __name__ == "__main__":
    sys.exit(main())
