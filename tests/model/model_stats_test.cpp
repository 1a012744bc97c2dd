// Size arithmetic against published parameter counts and hand computation.
#include "forma/model/model_stats.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "forma/core/files.h"
#include "forma/model/causal_lm.h"
#include "python_oracle.h"
#include "test_paths.h"
#include "zoo_fixtures.h"

namespace forma {
namespace {

TEST(ModelStats, PublishedParameterCounts) {
  EXPECT_EQ(count_parameters(load_model_config("llama-2-7b")).total, 6738415616);  // Meta's 6.74B
  EXPECT_EQ(count_parameters(load_model_config("gpt2")).total, 124439808);         // HF gpt2
  // Llama 3 8B: 8,030,261,248 (HF num_parameters of Meta-Llama-3-8B)
  EXPECT_EQ(count_parameters(load_model_config("llama-3-8b")).total, 8030261248);
  // Mistral 7B: 7,241,732,096; Mixtral 8x7B: 46,702,792,704 total, 12.9B active
  EXPECT_EQ(count_parameters(load_model_config("mistral-7b")).total, 7241732096);
  ParameterCounts mixtral = count_parameters(load_model_config("mixtral-8x7b"));
  EXPECT_EQ(mixtral.total, 46702792704);
  // active: 6 of the 8 experts per layer removed: 32 layers x 6 x 3 x 4096 x 14336
  EXPECT_EQ(mixtral.total - mixtral.active, 32LL * 6 * 3 * 4096 * 14336);
  // DeepSeek-V2-Lite (HF num_parameters 15,706,484,224): embed + lm_head 2 x 102400 x 2048 =
  // 419,430,400, final norm 2,048; per layer MLA q_proj 2048 x 16 x 192 = 6,291,456,
  // kv_a_proj_with_mqa 2048 x 576 = 1,179,648, kv_a_layernorm 512, kv_b_proj 512 x 16 x 256 =
  // 2,097,152, o_proj 2048 x 2048 = 4,194,304, norms 4,096: 27 x 13,767,168 = 371,713,536; layer 0
  // dense 3 x 2048 x 10944 = 67,239,936; 26 sparse layers of gate 64 x 2048 = 131,072, shared
  // 3 x 2048 x 2816 = 17,301,504, experts 64 x 3 x 2048 x 1408 = 553,648,128: 14,848,098,304.
  EXPECT_EQ(count_parameters(load_model_config("deepseek-v2-lite")).total, 15706484224);
  // Qwen2.5-0.5B (tied, q/k/v biases): 494,032,768
  EXPECT_EQ(count_parameters(load_model_config("qwen2.5-0.5b")).total, 494032768);
  // Qwen3-0.6B (tied, q/k norms, head_dim 128 with hidden 1024): 596,049,920; Qwen3-8B: 8,190,735,360
  EXPECT_EQ(count_parameters(load_model_config("qwen3-0.6b")).total, 596049920);
  EXPECT_EQ(count_parameters(load_model_config("qwen3-8b")).total, 8190735360);
  // StarCoder2-3B (tied, biased, LayerNorm with bias), by hand from its config.json: embedding
  // 49152 x 3072 = 150,994,944; per layer q/o 2 x (3072^2 + 3072), k/v 2 x (3072 x 256 + 256),
  // c_fc + c_proj 2 x 3072 x 12288 + 12288 + 3072, two LayerNorms 4 x 3072 = 95,979,008; x 30
  // layers + final LayerNorm 6,144 = 3,030,371,328 ("3B").
  EXPECT_EQ(count_parameters(load_model_config("starcoder2-3b")).total, 3030371328);
  // Gemma 2B (HF num_parameters 2,506,172,416; tied, MQA, head_dim 256): embedding 256000 x 2048 =
  // 524,288,000; per layer q/o 2 x 2048 x 2048 + k/v 2 x 2048 x 256 = 9,437,184, GeGLU 3 x 2048 x
  // 16384 = 100,663,296, two norms 4,096; 18 layers 1,981,882,368; final norm 2,048.
  EXPECT_EQ(count_parameters(load_model_config("gemma-2b")).total, 2506172416);
  // Gemma 7B (8,537,680,896): embedding 256000 x 3072 = 786,432,000; per layer q/k/v/o 4 x 3072 x
  // 4096 = 50,331,648, GeGLU 3 x 3072 x 24576 = 226,492,416, norms 6,144; 28 layers 7,751,245,824;
  // final norm 3,072.
  EXPECT_EQ(count_parameters(load_model_config("gemma-7b")).total, 8537680896);
  // phi-2 (HF num_parameters 2,779,683,840): embed 51200 x 2560 = 131,072,000; per layer q/k/v/dense
  // 4 x 2560^2 + 4 x 2560 = 26,224,640, fc1/fc2 2 x 2560 x 10240 + 10240 + 2560 = 52,441,600, one
  // LayerNorm 5,120: 78,671,360 x 32 = 2,517,483,520; final LayerNorm 5,120; lm_head with bias
  // 131,072,000 + 51,200 = 131,123,200.
  EXPECT_EQ(count_parameters(load_model_config("phi-2")).total, 2779683840);
  // stablelm-2-1_6b, by hand from its config.json (the model card says 1.6B): embed and lm_head 100352 x 2048 = 205,520,896 each; per
  // layer q/k/v/o 4 x 2048^2 + q/k/v bias 3 x 2048 = 16,783,360, gated MLP 3 x 2048 x 5632 =
  // 34,603,008, two LayerNorms 8,192: 51,394,560 x 24 = 1,233,469,440; final LayerNorm 4,096.
  EXPECT_EQ(count_parameters(load_model_config("stablelm-2-1_6b")).total, 1644515328);
  // Pythia's model table (and HF num_parameters): pythia-160m by hand: embed_in and embed_out
  // 50304 x 768 = 38,633,472 each; per layer query_key_value 768 x 2304 + 2304 = 1,771,776, dense
  // 590,592, MLP 768 x 3072 + 3072 + 3072 x 768 + 768 = 4,722,432, two LayerNorms 3,072:
  // 7,087,872 x 12 = 85,054,464; final LayerNorm 1,536.
  EXPECT_EQ(count_parameters(load_model_config("pythia-160m")).total, 162322944);
  EXPECT_EQ(count_parameters(load_model_config("pythia-1.4b")).total, 1414647808);
  EXPECT_EQ(count_parameters(load_model_config("pythia-6.9b")).total, 6857302016);
  // Qwen3-30B-A3B (30,532,122,624 total, 3,353,032,704 active): embed and lm_head 151936 x 2048 =
  // 311,164,928 each; per layer q/o 2 x 2048 x 4096 + k/v 2 x 2048 x 512 = 18,874,368, q/k norms 256,
  // two norms 4,096, router 128 x 2048 = 262,144, experts 128 x 3 x 2048 x 768 = 603,979,776 (8 active:
  // 37,748,736): 623,120,640 x 48 layers; final norm 2,048.
  ParameterCounts qwen3_moe = count_parameters(load_model_config("qwen3-30b-a3b"));
  EXPECT_EQ(qwen3_moe.total, 30532122624);
  EXPECT_EQ(qwen3_moe.active, 3353032704);
  // OLMoE-1B-7B-0924 (6,919,161,856 total, "6.9B", 1,282,017,280 active, "1.3B"): embed and
  // lm_head 50304 x 2048 = 103,022,592 each; per layer q/k/v/o 4 x 2048^2 = 16,777,216, q/k norms
  // over all heads 2 x 2048, two norms 4,096, router 64 x 2048 = 131,072, experts 64 x 3 x 2048 x
  // 1024 = 402,653,184 (8 active: 50,331,648): 419,569,664 x 16 layers; final norm 2,048.
  ParameterCounts olmoe = count_parameters(load_model_config("olmoe-1b-7b"));
  EXPECT_EQ(olmoe.total, 6919161856);
  EXPECT_EQ(olmoe.active, 1282017280);
  // Qwen1.5-MoE-A2.7B (14,315,784,192 total, "14.3B", 2,689,173,504 active, "2.7B"): embed and
  // lm_head 151936 x 2048 = 311,164,928 each; per layer q/k/v/o 4 x 2048^2 + q/k/v bias 3 x 2048 =
  // 16,783,360, two norms 4,096, router 60 x 2048 = 122,880, shared expert 3 x 2048 x 5632 =
  // 34,603,008 and its gate 2,048, experts 60 x 3 x 2048 x 1408 = 519,045,120 (4 active:
  // 34,603,008): 570,560,512 x 24 layers; final norm 2,048.
  ParameterCounts qwen2_moe = count_parameters(load_model_config("qwen1.5-moe-a2.7b"));
  EXPECT_EQ(qwen2_moe.total, 14315784192);
  EXPECT_EQ(qwen2_moe.active, 2689173504);
  // Gemma-2-2b (HF num_parameters 2,614,341,888; tied, head_dim 256, four norms per layer):
  // embedding 256000 x 2304 = 589,824,000; per layer q 2304 x 2048 + k/v 2 x 2304 x 1024 + o 2048 x
  // 2304 = 14,155,776, GeGLU 3 x 2304 x 9216 = 63,700,992, four norms 9,216: 77,865,984 x 26 =
  // 2,024,515,584; final norm 2,304.
  EXPECT_EQ(count_parameters(load_model_config("gemma-2-2b")).total, 2614341888);
  // Gemma-2-9b (9,241,705,984): embedding 256000 x 3584 = 917,504,000; per layer q/o 2 x 3584 x 4096
  // + k/v 2 x 3584 x 2048 = 44,040,192, GeGLU 3 x 3584 x 14336 = 154,140,672, norms 14,336:
  // 198,195,200 x 42 = 8,324,198,400; final norm 3,584.
  EXPECT_EQ(count_parameters(load_model_config("gemma-2-9b")).total, 9241705984);
  // Gemma-3-1b (999,885,952; tied, MQA, per-head q/k norms): embedding 262144 x 1152 = 301,989,888;
  // per layer q/o 2 x 1152 x 1024 + k/v 2 x 1152 x 256 = 2,949,120, q/k norms 2 x 256, GeGLU 3 x
  // 1152 x 6912 = 23,887,872, four norms 4,608: 26,842,112 x 26 = 697,894,912; final norm 1,152.
  EXPECT_EQ(count_parameters(load_model_config("gemma-3-1b")).total, 999885952);
  // BLOOM (tied, ALiBi, biases everywhere, LayerNorms with bias, one more on the embeddings).
  // bloom-560m (its model card: 559,214,592): embedding 250880 x 1024 = 256,901,120 and its
  // LayerNorm 2,048; per layer query_key_value 1024 x 3072 + 3072, dense 1024^2 + 1024, MLP 2 x 1024
  // x 4096 + 4096 + 1024, two LayerNorms 4,096: 12,596,224 x 24 = 302,309,376; ln_f 2,048.
  EXPECT_EQ(count_parameters(load_model_config("bloom-560m")).total, 559214592);
  // bloom, 176B (its model card: 176,247,271,424): embedding 250880 x 14336 = 3,596,615,680 and its
  // LayerNorm 28,672; per layer 14336 x 43008 + 43008, 14336^2 + 14336, 2 x 14336 x 57344 + 57344 +
  // 14336, LayerNorms 57,344: 2,466,437,120 x 70 = 172,650,598,400; ln_f 28,672.
  EXPECT_EQ(count_parameters(load_model_config("bloom")).total, 176247271424);
  // falcon-7b (HF num_parameters 6,921,720,704; tied, multi-query, no linear bias): embedding 65024
  // x 4544 = 295,469,056; per layer query_key_value 4544 x (4544 + 2 x 64), dense 4544^2, MLP 2 x
  // 4544 x 18176, one LayerNorm 9,088: 207,070,080 x 32 = 6,626,242,560; ln_f 9,088.
  EXPECT_EQ(count_parameters(load_model_config("falcon-7b")).total, 6921720704);
  // phi-3-mini-4k (Phi-3-mini-4k-instruct, 3,821,079,552; untied): embedding and lm_head 32064 x
  // 3072 = 98,500,608 each; per layer qkv_proj 3072 x 9216, o_proj 3072^2, gate_up_proj 3072 x
  // 16384, down_proj 8192 x 3072, two norms 6,144: 113,252,352 x 32 = 3,624,075,264; norm 3,072.
  EXPECT_EQ(count_parameters(load_model_config("phi-3-mini-4k")).total, 3821079552);
  // The presets below are the real checkpoints' config.json; each count also equals transformers'
  // num_parameters of the same config built on the meta device.
  // olmo-1b (allenai/OLMo-1B-hf, 1,176,764,416; tied, LayerNorms without parameters): embedding
  // 50304 x 2048 = 103,022,592; per layer q/k/v/o 4 x 2048^2 = 16,777,216, SwiGLU 3 x 2048 x 8192 =
  // 50,331,648: 67,108,864 x 16 = 1,073,741,824.
  EXPECT_EQ(count_parameters(load_model_config("olmo-1b")).total, 1176764416);
  // olmo-2-7b (allenai/OLMo-2-1124-7B, safetensors total 7,298,617,344; untied): embed and lm_head
  // 100352 x 4096 = 411,041,792 each; per layer q/k/v/o 4 x 4096^2 = 67,108,864, q/k norms over all
  // heads 2 x 4096, SwiGLU 3 x 4096 x 11008 = 135,266,304, post-attention and post-feedforward norms
  // 8,192: 202,391,552 x 32 = 6,476,529,664; final norm 4,096.
  EXPECT_EQ(count_parameters(load_model_config("olmo-2-7b")).total, 7298617344);
  // command-r (CohereForAI/c4ai-command-r-v01, "35B"; tied, one LayerNorm without bias per layer):
  // embedding 256000 x 8192 = 2,097,152,000; per layer q/k/v/o 4 x 8192^2 = 268,435,456, SwiGLU 3 x
  // 8192 x 22528 = 553,648,128, LayerNorm 8,192: 822,091,776 x 40 = 32,883,671,040; final norm 8,192.
  EXPECT_EQ(count_parameters(load_model_config("command-r")).total, 34980831232);
  // granite-3.0-2b (ibm-granite/granite-3.0-2b-instruct, model card "2.5B"; 3.1-2b has the same
  // shapes and 2,533,531,648; tied, 8 KV heads of 64): embedding 49155 x 2048 = 100,669,440; per
  // layer q/o 2 x 2048^2 = 8,388,608, k/v 2 x 2048 x 512 = 2,097,152, SwiGLU 3 x 2048 x 8192 =
  // 50,331,648, two norms 4,096: 60,821,504 x 40 = 2,432,860,160; final norm 2,048.
  EXPECT_EQ(count_parameters(load_model_config("granite-3.0-2b")).total, 2533531648);
  // minitron-4b (nvidia/Minitron-4B-Base, "4.19B"; untied, LayerNorm1P with bias, squared-ReLU MLP
  // without gate): embed and lm_head 256000 x 3072 = 786,432,000 each; per layer q/o 2 x 3072^2 =
  // 18,874,368, k/v 2 x 3072 x 1024 = 6,291,456, up/down 2 x 3072 x 9216 = 56,623,104, two
  // LayerNorms 4 x 3072 = 12,288: 81,801,216 x 32 = 2,617,638,912; final LayerNorm 6,144.
  EXPECT_EQ(count_parameters(load_model_config("minitron-4b")).total, 4190509056);
  // starcoderbase-1b (bigcode/starcoderbase-1b, 1,137,207,296; tied, multi-query, learned
  // positions): wte 49152 x 2048 = 100,663,296, wpe 8192 x 2048 = 16,777,216; per layer c_attn 2048 x
  // (2048 + 2 x 128) + 2,304 = 4,720,896, c_proj 2048^2 + 2048 = 4,196,352, MLP 2 x 2048 x 8192 +
  // 8192 + 2048 = 33,564,672, two LayerNorms 8,192: 42,490,112 x 24 = 1,019,762,688; ln_f 4,096.
  EXPECT_EQ(count_parameters(load_model_config("starcoderbase-1b")).total, 1137207296);
  // gpt-j-6b (EleutherAI/gpt-j-6b, HF 6,050,882,784; untied, lm_head bias): wte 50400 x 4096 =
  // 206,438,400; per layer q/k/v/out 4 x 4096^2 = 67,108,864 without bias, fc_in/fc_out 2 x 4096 x
  // 16384 + 16384 + 4096 = 134,238,208, ln_1 8,192: 201,355,264 x 28 = 5,637,947,392; ln_f 8,192;
  // lm_head 206,438,400 + 50,400.
  EXPECT_EQ(count_parameters(load_model_config("gpt-j-6b")).total, 6050882784);
  // glm-4-9b-chat (THUDM/glm-4-9b-chat-hf, model_type glm, 9,399,951,360; untied): embed and
  // lm_head 151552 x 4096 = 620,756,992 each; per layer q 4096^2 + 4096, k/v 2 x (4096 x 256 + 256),
  // o 4096^2: 35,656,192; gate_up 4096 x 2 x 13696 + down 13696 x 4096 = 168,296,448; two norms
  // 8,192: 203,960,832 x 40 = 8,158,433,280; final norm 4,096.
  EXPECT_EQ(count_parameters(load_model_config("glm-4-9b-chat")).total, 9399951360);
  // glm-4-9b-0414 (THUDM/GLM-4-9B-0414, model_type glm4): the same shapes plus GLM-4's two sandwich
  // norms per layer, 40 x 2 x 4096 = 327,680 more.
  EXPECT_EQ(count_parameters(load_model_config("glm-4-9b-0414")).total, 9400279040);
  // deepseek-v3 (deepseek-ai/DeepSeek-V3, "671B total, 37B activated"; its config.json without the
  // FP8 quantization_config; HF builds num_hidden_layers = 61 layers, not the checkpoint's extra
  // multi-token-prediction layer 61): embed and lm_head 129280 x 7168 = 926,679,040 each; per layer
  // MLA q_a_proj 7168 x 1536 = 11,010,048, q_a_layernorm 1,536, q_b_proj 1536 x 128 x 192 =
  // 37,748,736, kv_a_proj_with_mqa 7168 x 576 = 4,128,768, kv_a_layernorm 512, kv_b_proj 512 x 128 x
  // 256 = 16,777,216, o_proj 128 x 128 x 7168 = 117,440,512, two norms 14,336: 187,121,664 x 61 =
  // 11,414,421,504; 3 dense layers 3 x 7168 x 18432 = 396,361,728 each; 58 MoE layers of router 256 x
  // 7168 = 1,835,008 (e_score_correction_bias is a buffer), shared expert 3 x 7168 x 2048 =
  // 44,040,192, experts 256 x 3 x 7168 x 2048 = 11,274,289,152 (8 active: 352,321,536):
  // 11,320,164,352 each; final norm 7,168.
  ParameterCounts dsv3 = count_parameters(load_model_config("deepseek-v3"));
  EXPECT_EQ(dsv3.total, 671026404352);
  EXPECT_EQ(dsv3.total - dsv3.active, 58LL * 248 * 3 * 7168 * 2048);
}

// Every preset's count equals transformers' num_parameters() of HF's model built from the same
// config.json (preset_counts_reference.py, on the meta device), the real sizes included.
TEST(ModelStats, EveryPresetCountEqualsTransformers) {
  const std::string out = test::python_oracle_output("preset_counts_reference.py");
  auto counts = nlohmann::json::parse(read_file(out + "/counts.json"));
  size_t presets = 0;
  for (const auto& e : std::filesystem::directory_iterator(test::fixture("../../configs/models"))) {
    presets += e.path().extension() == ".json";
  }
  EXPECT_EQ(counts.size(), presets);
  EXPECT_GE(presets, 48u);
  for (const auto& [name, count] : counts.items()) {
    EXPECT_EQ(count_parameters(load_model_config(name)).total, count.get<int64_t>()) << name;
  }
}

TEST(ModelStats, CountsEqualTheBuiltModels) {
  std::vector<std::string> fixtures = {"hf-tiny/gpt2", "hf-tiny/llama", "hf-tiny/llama3_rope", "hf-tiny/mistral",
                                       "hf-tiny/qwen2", "hf-tiny/mixtral"};
  for (const auto& zoo : test::zoo_fixtures()) {  // every architecture of the registry
    if (zoo.supported) fixtures.push_back("hf-zoo/" + zoo.dir);
  }
  for (const auto& arch : fixtures) {
    ModelConfig c = load_model_config(test::fixture(arch));
    CausalLM model(c);
    int64_t n = 0;
    // Without gradient: HF buffers held as parameters (deepseek_v3's e_score_correction_bias),
    // which HF's num_parameters does not count either.
    for (const auto& p : model->parameters()) n += p.requires_grad() ? p.numel() : 0;
    EXPECT_EQ(count_parameters(c).total, n) << arch;
    // HF's own num_parameters() of the same model
    auto ref = nlohmann::json::parse(read_file(test::fixture(arch + "/reference.json")));
    EXPECT_EQ(count_parameters(c).total, ref["num_parameters"].get<int64_t>()) << arch;
  }
}

TEST(ModelStats, FlopsPerTokenByHand) {
  ModelConfig c = load_model_config("gpt2");
  // N = 124,439,808 - wte 38,597,376 - wpe 786,432 + tied lm_head 38,597,376 = 123,653,376
  ParameterCounts n = count_parameters(c);
  EXPECT_EQ(n.matmul_active, 123653376);
  const double attention = 12.0 * 12 * 768 * 1024;  // 12 * L * H * T
  EXPECT_DOUBLE_EQ(training_flops_per_token(c, 1024), 6.0 * 123653376 + attention);
  EXPECT_DOUBLE_EQ(inference_flops_per_token(c, 1024), 2.0 * 123653376 + attention / 3);
}

TEST(ModelStats, MemoryByHand) {
  ModelConfig c = load_model_config("llama-2-7b");
  const double N = 6738415616.0;
  EXPECT_DOUBLE_EQ(training_memory(c, false).total(), 16 * N);
  TrainingMemory bf16 = training_memory(c, true);
  EXPECT_DOUBLE_EQ(bf16.weights, 2 * N);
  EXPECT_DOUBLE_EQ(bf16.master_weights, 4 * N);
  EXPECT_DOUBLE_EQ(bf16.total(), 16 * N);
  // KV cache: 2 (K, V) x 32 layers x 4096 positions x 32 heads x 128 dims x 2 bytes = 2 GiB
  EXPECT_DOUBLE_EQ(kv_cache_bytes(c, 1, 4096, 2), 2.0 * 1024 * 1024 * 1024);
  EXPECT_DOUBLE_EQ(inference_memory(c, 1, 4096, 2), 2 * N + 2.0 * 1024 * 1024 * 1024);
}

}  // namespace
}  // namespace forma
