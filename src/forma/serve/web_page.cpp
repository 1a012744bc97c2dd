// The chat page served at `/`: one static HTML file with its script inline (no build step, no
// CDN), talking to /v1/chat/completions with stream: true. It keeps the conversation in the page,
// streams the reply as SSE chunks arrive (fetch + ReadableStream, since EventSource cannot POST),
// and offers a system prompt, temperature, max tokens, stop (aborts the fetch, which the server
// sees as a disconnect and cancels) and reset. An API key typed into the page is sent as a bearer
// token.
#include "forma/serve/http_server.h"

namespace forma::serve {

const char* web_page_html() {
  return R"FORMA_HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>forma chat</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; display: flex; flex-direction: column; height: 100vh; }
  header { padding: 8px 12px; background: #223; color: #eee; display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }
  header label { font-size: 13px; }
  header input { width: 70px; }
  #system { width: 320px; }
  #log { flex: 1; overflow-y: auto; padding: 12px; background: #f6f6f8; }
  .msg { max-width: 80%; margin: 6px 0; padding: 8px 10px; border-radius: 8px; white-space: pre-wrap; word-wrap: break-word; }
  .user { background: #d8e6ff; margin-left: auto; }
  .assistant { background: #fff; border: 1px solid #ddd; }
  .error { background: #fdd; border: 1px solid #c66; }
  form { display: flex; gap: 8px; padding: 8px 12px; border-top: 1px solid #ccc; }
  #input { flex: 1; padding: 8px; font-size: 15px; }
  #status { font-size: 12px; color: #aab; }
</style>
</head>
<body>
<header>
  <strong id="model">forma</strong>
  <label>System <input id="system" placeholder="system prompt (optional)"></label>
  <label>Temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0.7"></label>
  <label>Max tokens <input id="max_tokens" type="number" min="1" step="1" value="256"></label>
  <label>API key <input id="api_key" type="password"></label>
  <button id="reset" type="button">Reset</button>
  <span id="status"></span>
</header>
<div id="log"></div>
<form id="form">
  <input id="input" autocomplete="off" placeholder="Type a message and press Enter">
  <button id="send" type="submit">Send</button>
  <button id="stop" type="button" disabled>Stop</button>
</form>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let history = [];
let modelName = null;
let controller = null;

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api_key").value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

function addMessage(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.textContent = text;
  $("log").appendChild(div);
  $("log").scrollTop = $("log").scrollHeight;
  return div;
}

async function loadModel() {
  try {
    const r = await fetch("/v1/models", { headers: headers() });
    const body = await r.json();
    if (r.ok) { modelName = body.data[0].id; $("model").textContent = modelName; }
    else $("status").textContent = body.error ? body.error.message : "cannot list models";
  } catch (e) { $("status").textContent = String(e); }
}

function setBusy(busy) {
  $("send").disabled = busy;
  $("stop").disabled = !busy;
  $("status").textContent = busy ? "generating..." : "";
}

async function send(text) {
  if (!modelName) await loadModel();
  const messages = [];
  const system = $("system").value.trim();
  if (system) messages.push({ role: "system", content: system });
  for (const m of history) messages.push(m);
  messages.push({ role: "user", content: text });
  addMessage("user", text);
  const out = addMessage("assistant", "");
  out.dataset.done = "false";
  controller = new AbortController();
  setBusy(true);
  let reply = "";
  try {
    const r = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), signal: controller.signal,
      body: JSON.stringify({ model: modelName, messages, stream: true,
                             temperature: Number($("temperature").value),
                             max_tokens: Number($("max_tokens").value) }),
    });
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      throw new Error(body.error ? body.error.message : "HTTP " + r.status);
    }
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        if (!event.startsWith("data: ")) continue;
        const data = event.slice(6);
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        for (const c of chunk.choices) {
          if (c.delta && c.delta.content) { reply += c.delta.content; out.textContent = reply; }
        }
        $("log").scrollTop = $("log").scrollHeight;
      }
    }
    history.push({ role: "user", content: text }, { role: "assistant", content: reply });
  } catch (e) {
    if (e.name === "AbortError") {
      // Stopped by the user: keep what came as the reply.
      history.push({ role: "user", content: text }, { role: "assistant", content: reply });
    } else {
      out.className = "msg error";
      out.textContent = "error: " + e.message;
    }
  } finally {
    out.dataset.done = "true";
    controller = null;
    setBusy(false);
  }
}

$("form").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("input").value;
  if (!text.trim() || controller) return;
  $("input").value = "";
  send(text);
});
$("stop").addEventListener("click", () => { if (controller) controller.abort(); });
$("reset").addEventListener("click", () => {
  if (controller) controller.abort();
  history = [];
  $("log").innerHTML = "";
});
loadModel();
</script>
</body>
</html>
)FORMA_HTML";
}

}  // namespace forma::serve
