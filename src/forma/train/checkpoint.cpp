#include "forma/train/checkpoint.h"

#include <nlohmann/json.hpp>

#include <filesystem>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/core/log.h"
#include "forma/model/hf_io.h"
#include "forma/model/tensor_io.h"
#include "forma/parallel/collectives.h"
#include "forma/parallel/device_mesh.h"
#include "forma/train/checkpoint_dir.h"
#include "forma/train/checkpoint_slices.h"
#include "forma/train/dist_checkpoint.h"
#include "forma/train/dist_checkpoint_reader.h"

// A named namespace, not an anonymous one: unity builds compile several sources as one unit.
namespace forma::train::checkpoint_detail {

namespace fs = std::filesystem;

// Files of a model folder that must not be taken from a tokenizer folder (they are the model's).
bool is_model_file(const std::string& name) {
  return name == "config.json" || name == "generation_config.json" || name == "manifest.json" ||
         name == kCheckpointMetadataFile || name == "trainer_state.json" || name.rfind("model", 0) == 0 ||
         name.rfind("optimizer", 0) == 0;
}

void copy_tokenizer(const std::string& tokenizer_path, const std::string& dir) {
  if (tokenizer_path.empty()) return;
  fs::path src(tokenizer_path);
  check(fs::exists(src), "tokenizer.path: {} does not exist", tokenizer_path);
  if (fs::is_regular_file(src)) {
    fs::copy_file(src, fs::path(dir) / src.filename(), fs::copy_options::overwrite_existing);
    return;
  }
  for (auto& entry : fs::directory_iterator(src)) {
    auto name = entry.path().filename().string();
    if (entry.is_regular_file() && !is_model_file(name)) {
      fs::copy_file(entry.path(), fs::path(dir) / name, fs::copy_options::overwrite_existing);
    }
  }
}

parallel::ShardSpec spec_of(const CheckpointRole& role, const std::string& param) {
  if (role.shards != nullptr) {
    auto it = role.shards->find(param);
    check(it != role.shards->end(), "checkpoint: parameter '{}' has no tensor-parallel spec", param);
    return it->second;
  }
  return parallel::whole_shard_spec(role.layout.tensor_parallel, role.layout.sequence_parallel);
}

// The pieces this rank writes: of every parameter and of its optimizer state, the blocks it is the
// first tp rank to hold (the padding rows of a vocabulary never written); the step counts once.
std::vector<TensorPiece> owned_pieces(CausalLM& model, const std::map<std::string, torch::Tensor>& optimizer_state,
                                      const CheckpointRole& role) {
  const int tp = role.layout.tensor_parallel;
  std::vector<TensorPiece> pieces;
  auto params = model->named_parameters();
  for (const auto& p : params) {
    RankSlice slice = local_rank_slice(p.value().sizes().vec(), spec_of(role, p.key()), tp, role.tp_rank, p.key());
    if (slice.owner) pieces.push_back(rank_piece(p.key(), p.value(), slice));
  }
  for (const auto& [key, tensor] : optimizer_state) {
    const std::string name = optimizer_tensor_name(key);
    const TensorOwner owner = checkpoint_tensor_owner(name);
    check(params.contains(owner.param), "checkpoint: optimizer state '{}' belongs to no parameter of the model", key);
    const parallel::ShardSpec spec =
        owner.sliced_like_param ? spec_of(role, owner.param) : parallel::whole_shard_spec(tp, false);
    RankSlice slice = local_rank_slice(tensor.sizes().vec(), spec, tp, role.tp_rank, name);
    if (slice.owner) pieces.push_back(rank_piece(name, tensor, slice));
  }
  return pieces;
}

}  // namespace forma::train::checkpoint_detail

namespace forma::train {
namespace fs = std::filesystem;

CheckpointRole checkpoint_role(const parallel::DeviceMesh* mesh, const Recipe& recipe,
                               const std::map<std::string, parallel::ShardSpec>* shards) {
  CheckpointRole role;
  role.layout.sequence_parallel = recipe.parallel.sequence_parallel;
  role.layout.zero_stage = recipe.parallel.zero_stage;
  role.shards = shards;
  if (mesh == nullptr) return role;
  using parallel::Dim;
  role.rank = mesh->rank();
  role.layout.world_size = mesh->world_size();
  role.layout.pipeline_parallel = mesh->size(Dim::pp);
  role.layout.data_parallel = mesh->size(Dim::dp);
  role.layout.context_parallel = mesh->size(Dim::cp);
  role.layout.tensor_parallel = mesh->size(Dim::tp);
  role.tp_rank = mesh->coord(Dim::tp);
  // Data-parallel rank 0 holds the gathered optimizer state; context-parallel ranks hold the same
  // parameters (pipeline stages hold different ones: each stage writes its own).
  role.writes_pieces = mesh->coord(Dim::dp) == 0 && mesh->coord(Dim::cp) == 0;
  role.barrier = [mesh] { parallel::barrier(mesh->world()); };
  return role;
}

const std::vector<std::string>& required_checkpoint_files() {
  static const std::vector<std::string> files{"config.json", kCheckpointMetadataFile, "trainer_state.json"};
  return files;
}

void write_generation_config(const ModelConfig& config, const std::string& dir) {
  nlohmann::json j = {{"_from_model_config", true}};
  if (config.bos_token_id) j["bos_token_id"] = *config.bos_token_id;
  if (config.eos_token_id.size() == 1) j["eos_token_id"] = config.eos_token_id[0];
  if (config.eos_token_id.size() > 1) j["eos_token_id"] = config.eos_token_id;
  write_file_atomic((fs::path(dir) / "generation_config.json").string(), j.dump(2) + "\n");
}

std::string save_checkpoint(const std::string& checkpoints_dir, int keep_last, CausalLM& model,
                            const std::map<std::string, torch::Tensor>& optimizer_state, const TrainerState& state,
                            const std::string& tokenizer_path, const CheckpointRole& role,
                            const std::function<void(const std::string& dir)>& write_extra) {
  const int tp = role.layout.tensor_parallel;
  auto barrier = [&role] {
    if (role.barrier) role.barrier();
  };
  std::vector<TensorPiece> pieces;
  if (role.writes_pieces) pieces = checkpoint_detail::owned_pieces(model, optimizer_state, role);
  // Rank 0 prepares the folder every rank writes into; the barrier publishes it.
  std::string tmp = checkpoint_temp_dir(checkpoints_dir, state.step);
  std::string final_dir = (fs::path(checkpoints_dir) / checkpoint_name(state.step)).string();
  try {
    if (role.rank == 0) prepare_checkpoint_dir(checkpoints_dir, state.step);
    barrier();
    write_rank_pieces(tmp, role.rank, pieces);
    barrier();
    if (role.rank == 0) {
      auto digests = merge_rank_indexes(tmp, role.layout.world_size, role.layout, state.step);
      checkpoint_detail::copy_tokenizer(tokenizer_path, tmp);
      if (tp == 1) {
        save_pretrained(model, tmp);  // config.json and model.safetensors: an HF model folder
      } else {
        write_file_atomic((fs::path(tmp) / "config.json").string(), to_hf_json(model->config()).dump(2) + "\n");
      }
      write_generation_config(model->config(), tmp);
      if (write_extra) write_extra(tmp);
      write_file_atomic((fs::path(tmp) / "trainer_state.json").string(), trainer_state_to_json(state));
      final_dir = finish_checkpoint(checkpoints_dir, state.step, keep_last, digests);
    }
    barrier();  // the checkpoint is committed for everyone
  } catch (...) {
    // A save that failed (a full disk, a rank that died) leaves no partial folder behind: it would
    // keep the disk full. Every rank tries, whichever failed; once committed, tmp is gone already.
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  return final_dir;
}

void load_checkpoint_weights(const DistCheckpointReader& reader, CausalLM& model, const CheckpointRole& role) {
  auto params = model->named_parameters();
  for (const auto& [name, entry] : reader.metadata().tensors) {
    check(params.contains(checkpoint_tensor_owner(name).param),
          "{}/{}: tensor '{}' belongs to no parameter of this {} model", reader.dir(), kCheckpointMetadataFile, name,
          model->config().model_type);
  }
  torch::NoGradGuard no_grad;
  for (auto& p : params) {
    RankSlice slice = local_rank_slice(p.value().sizes().vec(), checkpoint_detail::spec_of(role, p.key()),
                                       role.layout.tensor_parallel, role.tp_rank, p.key());
    p.value().copy_(read_rank_slice(reader, p.key(), slice));
  }
}

TrainerState load_checkpoint(const std::string& dir, CausalLM& model, Optimizer& optimizer,
                             const CheckpointRole& role) {
  DistCheckpointReader reader(dir, /*verify=*/false);
  load_checkpoint_weights(reader, model, role);
  // The AdamW state of this rank's parameters, sliced like them (ZeRO then keeps its part).
  std::map<std::string, torch::Tensor> optimizer_state;
  for (const auto& p : model->named_parameters()) {
    const std::string step = optimizer_tensor_name(p.key() + ".step");
    if (!reader.contains(step)) continue;  // AdamW never stepped this parameter
    optimizer_state[p.key() + ".step"] = reader.read(step);
    RankSlice slice = local_rank_slice(p.value().sizes().vec(), checkpoint_detail::spec_of(role, p.key()),
                                       role.layout.tensor_parallel, role.tp_rank, p.key());
    for (const char* moment : {".exp_avg", ".exp_avg_sq"}) {
      optimizer_state[p.key() + moment] = read_rank_slice(reader, optimizer_tensor_name(p.key() + moment), slice);
    }
  }
  optimizer.load_state_dict(optimizer_state, dir);
  auto state_path = (fs::path(dir) / "trainer_state.json").string();
  return trainer_state_from_json(read_file(state_path), state_path);
}

}  // namespace forma::train
