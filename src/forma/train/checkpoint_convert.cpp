#include "forma/train/checkpoint_convert.h"

#include <filesystem>
#include <functional>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/model/hf_io.h"
#include "forma/parallel/tensor_parallel_specs.h"
#include "forma/train/checkpoint.h"
#include "forma/train/checkpoint_dir.h"
#include "forma/train/checkpoint_slices.h"
#include "forma/train/dist_checkpoint.h"
#include "forma/train/dist_checkpoint_reader.h"

// A named namespace, not an anonymous one: unity builds compile several sources as one unit.
namespace forma::train::checkpoint_convert_detail {

namespace fs = std::filesystem;

// The checkpoint's own bookkeeping and weights, which a conversion writes anew.
bool is_weight_or_bookkeeping(const std::string& name) {
  return name == "manifest.json" || name == kCheckpointMetadataFile || name == "model.safetensors" ||
         name == "model.safetensors.index.json" || (name.rfind("model-", 0) == 0 && name.size() > 12 &&
                                                     name.compare(name.size() - 12, 12, ".safetensors") == 0);
}

// Copies the regular files at the top of `from` (not shards/) that `keep` accepts; returns how many.
size_t copy_top_files(const std::string& from, const std::string& to,
                      const std::function<bool(const std::string&)>& keep) {
  size_t copied = 0;
  for (const auto& entry : fs::directory_iterator(from)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || !keep(name)) continue;
    fs::copy_file(entry.path(), fs::path(to) / name, fs::copy_options::overwrite_existing);
    ++copied;
  }
  return copied;
}

// The whole model of a checkpoint, in one process.
CausalLM assemble_model(const DistCheckpointReader& reader) {
  CausalLM model(load_model_config((fs::path(reader.dir()) / "config.json").string()));
  load_checkpoint_weights(reader, model);
  return model;
}

}  // namespace forma::train::checkpoint_convert_detail

namespace forma::train {

namespace convert_detail = checkpoint_convert_detail;

size_t merge_checkpoint(const std::string& dir, const std::string& to) {
  check_output_is_not_input(to, {dir}, "--to");
  // A LoRA run's checkpoint (tensor_parallel 1) is already the base's HF folder plus the adapter.
  check(!std::filesystem::exists(std::filesystem::path(dir) / "adapter_config.json"),
        "{}: a LoRA checkpoint: its model.safetensors is the frozen base; `forma lora merge --model {} --adapter {} "
        "--to {}` writes the merged model", dir, dir, dir, to);
  DistCheckpointReader reader(dir);
  CausalLM model = convert_detail::assemble_model(reader);
  write_folder_atomic(to, [&](const std::string& tmp) {
    save_pretrained(model, tmp);
    // generation_config.json and the tokenizer files; not what only resume needs.
    convert_detail::copy_top_files(dir, tmp, [](const std::string& name) {
      return name != "config.json" && name != "trainer_state.json" && !convert_detail::is_weight_or_bookkeeping(name);
    });
  });
  return model->named_parameters().size();
}

void reshard_checkpoint(const std::string& dir, const std::string& to, const CheckpointLayout& layout) {
  check_output_is_not_input(to, {dir}, "--to");
  DistCheckpointReader reader(dir);
  const std::string config_path = (std::filesystem::path(dir) / "config.json").string();
  const ModelConfig config = load_model_config(config_path);
  const int tp = layout.tensor_parallel;
  check(layout.pipeline_parallel == 1 && layout.context_parallel == 1,
        "reshard: pipeline_parallel and context_parallel must be 1 (not supported yet)");
  check(layout.world_size == layout.data_parallel * tp,
        "reshard: data_parallel={} x tensor_parallel={} does not make world_size {}", layout.data_parallel, tp,
        layout.world_size);
  const auto specs = parallel::tensor_parallel_shard_specs(config, tp, layout.sequence_parallel);
  auto base_spec = [&](const std::string& param) {
    auto it = specs.find(param);
    return it == specs.end() ? parallel::whole_shard_spec(tp, layout.sequence_parallel) : it->second;
  };
  auto spec_of = [&](const std::string& name) {
    const TensorOwner owner = checkpoint_tensor_owner(name);
    if (!owner.sliced_like_param) return parallel::whole_shard_spec(tp, layout.sequence_parallel);
    // A LoRA adapter's A and B follow their base layer's split (parallel::lora_shard_specs).
    for (const std::string part : {".lora_A.weight", ".lora_B.weight"}) {
      const std::string& p = owner.param;
      if (p.size() <= part.size() || p.compare(p.size() - part.size(), part.size(), part) != 0) continue;
      const auto lora = parallel::lora_shard_specs(base_spec(p.substr(0, p.size() - part.size()) + ".weight"), tp);
      return part == ".lora_A.weight" ? lora.a : lora.b;
    }
    return base_spec(owner.param);
  };
  write_folder_atomic(to, [&](const std::string& tmp) {
    // The ranks of data-parallel rank 0 write, one per tp rank: world ranks 0..tp-1 (tp innermost).
    for (int rank = 0; rank < layout.world_size; ++rank) {
      std::vector<TensorPiece> pieces;
      for (const auto& [name, entry] : reader.metadata().tensors) {
        if (rank >= tp) break;
        RankSlice slice = rank_slice(entry.shape, spec_of(name), tp, rank);
        if (!slice.owner) continue;
        torch::Tensor block = reader.read(name, slice.offsets, slice.lengths);
        pieces.push_back(TensorPiece{name, entry.shape, slice.offsets, block});
      }
      write_rank_pieces(tmp, rank, pieces);
    }
    auto digests = merge_rank_indexes(tmp, layout.world_size, layout, reader.metadata().step);
    convert_detail::copy_top_files(dir, tmp, [](const std::string& name) {
      return !convert_detail::is_weight_or_bookkeeping(name);
    });
    if (tp == 1) {
      CausalLM model = convert_detail::assemble_model(reader);
      save_pretrained(model, tmp);  // as the trainer writes it with one tp rank
    }
    write_checkpoint_manifest(tmp, digests);
  });
}

}  // namespace forma::train
