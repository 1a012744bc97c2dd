// The one precompiled header of forma_torch: torch.h costs ~20 s per translation unit otherwise.
#pragma once
#include <torch/torch.h>
