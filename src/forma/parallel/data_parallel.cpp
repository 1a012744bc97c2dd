#include "forma/parallel/data_parallel.h"

#include "forma/parallel/collectives.h"
#include "forma/parallel/grad_buckets.h"
#include "forma/parallel/zero_optimizer.h"

namespace forma::parallel {
namespace {

class AllReduceAdamW : public train::Optimizer {
 public:
  AllReduceAdamW(GroupPtr group, std::vector<train::NamedParameter> params, const train::AdamWOptions& options,
                 int64_t bucket_bytes, train::ModelParallelSum model_parallel_sum)
      : group_(std::move(group)),
        params_(params),
        buckets_(plan_grad_buckets(params, bucket_bytes, 1)),
        local_(train::make_local_adamw(std::move(params), options, std::move(model_parallel_sum))) {}

  double step(double lr, double max_grad_norm) override {
    torch::NoGradGuard no_grad;
    if (group_->getSize() > 1) all_reduce_gradients();
    return local_->step(lr, max_grad_norm);
  }
  void zero_grad() override { local_->zero_grad(); }
  std::map<std::string, torch::Tensor> gather_state_dict() override { return local_->gather_state_dict(); }
  void load_state_dict(const std::map<std::string, torch::Tensor>& state, const std::string& source) override {
    local_->load_state_dict(state, source);
  }

 private:
  void all_reduce_gradients() {
    auto present = gradient_presence(group_, params_);
    std::vector<torch::Tensor> flats;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (const auto& bucket : buckets_) {  // launch every bucket before waiting for the first
      flats.push_back(take_bucket_gradients(bucket, params_));
      std::vector<at::Tensor> list{flats.back()};
      works.push_back(group_->allreduce(list));
    }
    for (size_t b = 0; b < buckets_.size(); ++b) {
      works[b]->wait();
      for (const auto& e : buckets_[b].entries) {
        auto& p = params_[e.param].tensor;
        // The summed gradient becomes the parameter's gradient (a view: no copy); a parameter no
        // rank had a gradient for keeps none, so AdamW skips it as in one process.
        if (present[e.param]) p.mutable_grad() = flats[b].narrow(0, e.offset, e.numel).view_as(p);
      }
    }
  }

  GroupPtr group_;
  std::vector<train::NamedParameter> params_;
  std::vector<GradBucket> buckets_;
  std::unique_ptr<train::Optimizer> local_;
};

}  // namespace

DataParallel::DataParallel(std::shared_ptr<DeviceMesh> mesh) : mesh_(std::move(mesh)) {}

double DataParallel::sum(double value) const { return mesh_ ? all_reduce_sum(mesh_->group(Dim::dp), value) : value; }

bool DataParallel::any(bool value) const { return mesh_ ? all_reduce_sum(mesh_->world(), value ? 1.0 : 0.0) > 0 : value; }

void DataParallel::barrier() const {
  if (mesh_) parallel::barrier(mesh_->world());
}

std::vector<double> DataParallel::gather_world(double value) const {
  if (!mesh_) return {value};
  auto all = all_gather_cat(mesh_->world(), torch::tensor({value}, torch::kFloat64), 0);
  return std::vector<double>(all.data_ptr<double>(), all.data_ptr<double>() + all.numel());
}

void DataParallel::broadcast_parameters(const std::vector<train::NamedParameter>& params) const {
  if (!mesh_ || size() == 1) return;
  torch::NoGradGuard no_grad;
  for (const auto& p : params) {
    auto tensor = p.tensor;
    broadcast(mesh_->group(Dim::dp), tensor, 0);
  }
}

std::unique_ptr<train::Optimizer> DataParallel::make_optimizer(std::vector<train::NamedParameter> params,
                                                               const train::AdamWOptions& options, int zero_stage,
                                                               double bucket_mb) const {
  if (!mesh_) return train::make_local_adamw(std::move(params), options);
  auto bucket_bytes = static_cast<int64_t>(bucket_mb * 1024 * 1024);
  train::ModelParallelSum tp_sum;
  if (mesh_->size(Dim::tp) > 1) {
    tp_sum = [group = mesh_->group(Dim::tp)](double partial) { return all_reduce_sum(group, partial); };
  }
  if (zero_stage == 1) {
    return make_zero_adamw(mesh_->group(Dim::dp), std::move(params), options, bucket_bytes, std::move(tp_sum));
  }
  return make_all_reduce_adamw(mesh_->group(Dim::dp), std::move(params), options, bucket_bytes, std::move(tp_sum));
}

std::unique_ptr<train::Optimizer> make_all_reduce_adamw(const GroupPtr& group, std::vector<train::NamedParameter> params,
                                                        const train::AdamWOptions& options, int64_t bucket_bytes,
                                                        train::ModelParallelSum model_parallel_sum) {
  return std::make_unique<AllReduceAdamW>(group, std::move(params), options, bucket_bytes,
                                          std::move(model_parallel_sum));
}

}  // namespace forma::parallel
