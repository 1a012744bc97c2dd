#!/usr/bin/env python3
"""Reference renderer for forma's chat-template tests: renders a template with Jinja2 exactly the way
Hugging Face transformers does in apply_chat_template (ImmutableSandboxedEnvironment with
trim_blocks and lstrip_blocks, the loopcontrols extension, a {% generation %} tag, transformers'
own tojson, raise_exception and strftime_now).

Usage: render_jinja2.py INPUT.json OUTPUT.json
INPUT.json holds {"cases": [{"template": "...", "context": {...}}, ...]} (one process renders many
cases: starting Python costs more than rendering). OUTPUT.json receives one result per case:
{"ok": true, "text": "..."} or {"ok": false, "raised": <raise_exception was called>,
"error": "<message>"}.
"""
import json
import sys
from datetime import datetime

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment


class AssistantTracker(Extension):
    # transformers marks assistant turns with {% generation %}; rendering just emits the body.
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


class RaisedByTemplate(jinja2.exceptions.TemplateError):
    pass


def raise_exception(message):
    raise RaisedByTemplate(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # As transformers defines it: json.dumps without Jinja's HTML escaping.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def strftime_now(format):
    return datetime.now().strftime(format)


def make_environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, case):
    try:
        return {"ok": True, "text": env.from_string(case["template"]).render(**case["context"])}
    except Exception as e:  # any failure is a result to compare, not a crash of the script
        return {"ok": False, "raised": isinstance(e, RaisedByTemplate), "error": str(e)}


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        request = json.load(f)
    env = make_environment()
    results = [render(env, case) for case in request["cases"]]
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(results, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
