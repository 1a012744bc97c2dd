// Model FLOPs per trained token, the numerator of MFU: 6 per matmul weight (forward 2, backward 4)
// plus the attention scores and weighted sum, 12 * layers * heads * head_dim * seq_len (PaLM's
// appendix B, as nanoGPT and Megatron count). Embedding lookups cost nothing; a tied output
// projection counts once, as the matmul it is.
#pragma once
#include <torch/torch.h>

#include <cstdint>

#include "forma/model/causal_lm.h"

namespace forma::train {

int64_t matmul_parameter_count(CausalLM& model);
double training_flops_per_token(CausalLM& model, int64_t seq_len);

}  // namespace forma::train
