"""What transformers makes of minimal granite / olmo / nemotron configs (sizes only): the defaults
of the fields forma's specs read. Writes OUT/<type>/config.json and OUT/defaults.json."""
import json
import os
import sys

from transformers import AutoConfig

out = sys.argv[1]
sizes = {"vocab_size": 64, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
         "num_attention_heads": 4}
result = {}
for model_type in ["granite", "olmo", "nemotron"]:
    folder = os.path.join(out, model_type)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"model_type": model_type, **sizes}, f)
    c = AutoConfig.from_pretrained(folder)
    rope = c.rope_parameters
    r = {
        "rope_theta": rope["rope_theta"],
        "partial_rotary_factor": rope.get("partial_rotary_factor", 1.0),
        "bos_token_id": c.bos_token_id,
        "eos_token_id": c.eos_token_id,
        "tie_word_embeddings": c.tie_word_embeddings,
        "hidden_act": c.hidden_act,
        "num_key_value_heads": c.num_key_value_heads,
        "attention_bias": c.attention_bias,
    }
    if model_type == "granite":
        r.update(attention_multiplier=c.attention_multiplier, embedding_multiplier=c.embedding_multiplier,
                 residual_multiplier=c.residual_multiplier, logits_scaling=c.logits_scaling,
                 norm_eps=c.rms_norm_eps, mlp_bias=c.mlp_bias)
    elif model_type == "olmo":
        r.update(clip_qkv=c.clip_qkv, norm_eps=1e-5)  # OlmoLayerNorm's constant
    else:
        r.update(norm_eps=c.norm_eps, head_dim=c.head_dim, mlp_bias=c.mlp_bias)
    result[model_type] = r
with open(os.path.join(out, "defaults.json"), "w") as f:
    json.dump(result, f, indent=1)
