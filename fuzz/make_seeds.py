#!/usr/bin/env python3
"""Writes the seed corpora of fuzz/corpus/<target>/ from the repository's own files (configs/,
tests/fixtures, tests/assets) and a few hand-written inputs. Run once; the output is committed."""
import json, os, shutil, struct, glob

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out = os.path.join(root, "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def st(tensors, metadata=None):
    """A safetensors file: tensors is [(name, dtype, shape, bytes)]."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


# safetensors: the smallest tensors of a real fixture, and hand-made files.
put("safetensors", "one_f32", st([("w", "F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4))], {"format": "pt"}))
put("safetensors", "mixed", st([("a", "BF16", [3], b"\x80\x3f" * 3), ("b", "I64", [], b"\x01" * 8),
                                ("c", "BOOL", [2, 1], b"\x00\x01"), ("e", "F16", [0, 4], b"")]))
put("safetensors", "empty", st([]))
fixture = open(os.path.join(root, "tests/fixtures/hf-tiny/llama/model.safetensors"), "rb").read()
n = struct.unpack("<Q", fixture[:8])[0]
hdr = json.loads(fixture[8:8 + n])
small = [(k, v) for k, v in hdr.items() if k != "__metadata__" and v["data_offsets"][1] - v["data_offsets"][0] <= 512]
tensors = [(k, v["dtype"], v["shape"], fixture[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in small[:4]]
put("safetensors", "llama_norms", st(tensors, hdr.get("__metadata__")))

# config.json: every preset and fixture.
for p in glob.glob(os.path.join(root, "configs/models/*.json")) + glob.glob(os.path.join(root, "configs/recipes/models/*.json")):
    os.makedirs(os.path.join(out, "model_config"), exist_ok=True)
    shutil.copy(p, os.path.join(out, "model_config", os.path.basename(p)))
for p in glob.glob(os.path.join(root, "tests/fixtures/hf-tiny/*/config.json")):
    shutil.copy(p, os.path.join(out, "model_config", "hf-tiny-" + os.path.basename(os.path.dirname(p)) + ".json"))

# recipes.
for p in glob.glob(os.path.join(root, "configs/recipes/*.yaml")):
    os.makedirs(os.path.join(out, "recipe"), exist_ok=True)
    shutil.copy(p, os.path.join(out, "recipe", os.path.basename(p)))
put("recipe", "parallel.yaml", "model: {path: tiny-llama}\nparallel:\n  tensor_parallel: 2\n  zero_stage: 1\n"
    "  bucket_mb: 1.5\ndata:\n  prefixes: [a, b]\n  weights: [0.3, 0.7]\nschedule: {type: wsd, decay_fraction: 0.5}\n")

# chat templates: the chat_template of every fixture.
for p in glob.glob(os.path.join(root, "tests/fixtures/chat_templates/*.json")):
    t = json.load(open(p))["chat_template"]
    if isinstance(t, list):
        t = t[0]["template"]
    put("chat_template", os.path.basename(p)[:-5] + ".jinja", t)
put("chat_template", "features.jinja",
    "{%- macro m(x, y=2) -%}{{ x ~ y }}{%- endmacro -%}{% set ns = namespace(n=0) %}"
    "{% for msg in messages if msg.role != 'system' %}{% set ns.n = ns.n + 1 %}{{ loop.index }}:{{ msg['content']|upper|replace('A','b') }}"
    "{{ m(msg.role) }}{% if loop.last %}{{ eos_token }}{% endif %}{% endfor %}{{ ns.n }}{{ [1,2,3]|join(',') }}"
    "{{ {'a': 1}|tojson }}{{ range(3)|list|length }}{{ 'x'*3 }}{{ messages[-1].content[1:3] }}{% if add_generation_prompt %}A:{% endif %}")

# tokenizer.json: llama 3's pipeline with a vocabulary cut to a few hundred entries, and hand-made ones.
t = json.load(open(os.path.join(root, "tests/assets/tokenizer-llama3/models/tokenizer.json")))
vocab = {k: v for k, v in t["model"]["vocab"].items() if v < 400}
merges = []
for m in t["model"]["merges"]:
    a, b = m.split(" ") if isinstance(m, str) else m
    if a in vocab and b in vocab and a + b in vocab:
        merges.append(m)
t["model"]["vocab"], t["model"]["merges"] = vocab, merges
t["added_tokens"] = [dict(a, id=400 + i) for i, a in enumerate(t["added_tokens"][:3])]
put("tokenizer_json", "llama3_small.json", json.dumps(t))
byte_vocab = {"<0x%02X>" % c: c for c in range(256)}
byte_vocab.update({"▁": 256, "▁a": 257, "ab": 258, "<unk>": 259, "<s>": 260, "</s>": 261})
put("tokenizer_json", "metaspace_bytefallback.json", json.dumps({
    "version": "1.0", "added_tokens": [
        {"id": 259, "content": "<unk>", "special": True, "normalized": False, "lstrip": False, "rstrip": False, "single_word": False},
        {"id": 260, "content": "<s>", "special": True, "normalized": False, "lstrip": False, "rstrip": False, "single_word": False},
        {"id": 261, "content": "</s>", "special": True, "normalized": False, "lstrip": False, "rstrip": False, "single_word": False}],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
    "pre_tokenizer": None,
    "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                       "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                       "special_tokens": {"<s>": {"id": "<s>", "ids": [260], "tokens": ["<s>"]}}},
    "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
    "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None, "end_of_word_suffix": None,
              "fuse_unk": True, "byte_fallback": True, "vocab": byte_vocab, "merges": [["▁", "a"], ["a", "b"]]}}))
put("tokenizer_json", "split_nfkc_digits.json", json.dumps({
    "version": "1.0", "added_tokens": [{"id": 4, "content": "[X]", "special": False, "normalized": True, "lstrip": True, "rstrip": True, "single_word": True}],
    "normalizer": {"type": "NFKC"},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True},
                      {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Removed", "invert": False}, {"type": "WhitespaceSplit"}]},
    "post_processor": {"type": "BertProcessing", "sep": ["[X]", 4], "cls": ["[X]", 4]},
    "decoder": None,
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "1": 3}, "merges": ["a b"], "unk_token": None}}))

# Megatron .idx/.bin: fuzz input = u32 bin size, .bin, .idx.
def idx(dtype, lengths, pointers, docs, modes=False):
    b = b"MMIDIDX\x00\x00" + struct.pack("<QBQQ", 1, dtype, len(lengths), len(docs))
    b += struct.pack("<%di" % len(lengths), *lengths) + struct.pack("<%dq" % len(pointers), *pointers)
    b += struct.pack("<%dq" % len(docs), *docs)
    if modes:
        b += b"\x00" * len(lengths)
    return b
def ds(binary, index):
    return struct.pack("<I", len(binary)) + binary + index
put("indexed_dataset", "uint16_3docs", ds(struct.pack("<6H", 1, 2, 3, 4, 5, 65499), idx(8, [2, 3, 1], [0, 4, 10], [0, 1, 2, 3])))
put("indexed_dataset", "int32_multimodal", ds(struct.pack("<3i", 7, -1, 9), idx(4, [1, 2], [0, 4], [0, 2], modes=True)))
put("indexed_dataset", "int64_empty_doc", ds(struct.pack("<2q", 5, 6), idx(5, [2, 0], [0, 16], [0, 1, 2])))
put("indexed_dataset", "uint8_none", ds(b"", idx(1, [], [], [0])))

# distributed checkpoint metadata.json.
def meta(tensors, layout=None):
    return json.dumps({"format": "forma-dist-checkpoint-1", "step": 10,
                       "layout": layout or {"world_size": 2, "pipeline_parallel": 1, "data_parallel": 1, "context_parallel": 1,
                                            "tensor_parallel": 2, "sequence_parallel": False, "zero_stage": 0},
                       "tensors": tensors}, indent=1) + "\n"
put("dist_checkpoint_metadata", "tp2", meta({
    "model.embed_tokens.weight": {"dtype": "F32", "shape": [320, 64], "pieces": [
        {"file": "shards/rank-00000.safetensors", "key": "model.embed_tokens.weight", "offsets": [0, 0], "lengths": [160, 64]},
        {"file": "shards/rank-00001.safetensors", "key": "model.embed_tokens.weight", "offsets": [160, 0], "lengths": [160, 64]}]},
    "step": {"dtype": "I64", "shape": [], "pieces": [{"file": "shards/rank-00000.safetensors", "key": "step", "offsets": [], "lengths": []}]},
    "norm": {"dtype": "BF16", "shape": [0], "pieces": [{"file": "a.safetensors", "key": "n", "offsets": [0], "lengths": [0]}]}}))
put("dist_checkpoint_metadata", "zero1", meta({"w": {"dtype": "F16", "shape": [4, 6], "pieces": [
    {"file": "r0.safetensors", "key": "w", "offsets": [0, 0], "lengths": [4, 3]},
    {"file": "r1.safetensors", "key": "w", "offsets": [0, 3], "lengths": [4, 3]}]}},
    {"world_size": 4, "pipeline_parallel": 1, "data_parallel": 2, "context_parallel": 1, "tensor_parallel": 2,
     "sequence_parallel": True, "zero_stage": 1}))
