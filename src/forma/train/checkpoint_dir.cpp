#include "forma/train/checkpoint_dir.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <map>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/core/log.h"

namespace forma::train {
namespace fs = std::filesystem;

namespace {

constexpr const char* kManifest = "manifest.json";
constexpr const char* kLatest = "latest";

// Step number of a "step-NNNNNNN" folder name, or -1.
int64_t parse_step_name(const std::string& name) {
  if (name.rfind("step-", 0) != 0 || name.size() <= 5) return -1;
  auto digits = name.substr(5);
  if (!std::all_of(digits.begin(), digits.end(), ::isdigit) || digits.size() > 15) return -1;
  return std::stoll(digits);
}

// Step folders in `dir`, newest first.
std::vector<std::pair<int64_t, std::string>> step_folders(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  std::error_code ec;
  for (auto& entry : fs::directory_iterator(dir, ec)) {
    int64_t step = parse_step_name(entry.path().filename().string());
    if (step >= 0 && entry.is_directory() && !entry.is_symlink()) out.emplace_back(step, entry.path().string());
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.first > b.first; });
  return out;
}

std::string hex64(uint64_t v) { return fmt::format("{:016x}", v); }

void point_latest(const std::string& checkpoints_dir, const std::string& name) {
  auto tmp = fs::path(checkpoints_dir) / ".latest.tmp";
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_directory_symlink(name, tmp);
  fs::rename(tmp, fs::path(checkpoints_dir) / kLatest);  // rename(2) replaces the old link atomically
  fsync_path(checkpoints_dir);
}

void prune(const std::string& checkpoints_dir, int keep_last) {
  auto folders = step_folders(checkpoints_dir);
  for (size_t i = static_cast<size_t>(keep_last); i < folders.size(); ++i) {
    std::error_code ec;
    fs::remove_all(folders[i].second, ec);
    if (ec) log::warn("could not delete old checkpoint {}: {}", folders[i].second, ec.message());
  }
}

}  // namespace

uint64_t fnv1a64_file(const std::string& path) {
  uint64_t hash = 14695981039346656037ull;
  if (fs::file_size(path) == 0) return hash;
  MappedFile file(path);
  const uint8_t* p = file.data();
  // Block by block, each block's pages released once hashed: checksumming a shard of many GB costs
  // this process a block of resident memory, not the file's size.
  constexpr size_t kBlock = size_t{64} << 20;
  for (size_t begin = 0, n = file.size(); begin < n; begin += kBlock) {
    const size_t end = std::min(n, begin + kBlock);
    for (size_t i = begin; i < end; ++i) {
      hash ^= p[i];
      hash *= 1099511628211ull;
    }
    file.release_pages(p + begin, end - begin);
  }
  return hash;
}

std::string checkpoint_name(int64_t step) { return fmt::format("step-{:07d}", step); }

FileDigest file_digest(const std::string& path) {
  return FileDigest{static_cast<uint64_t>(fs::file_size(path)), fnv1a64_file(path)};
}

std::string checkpoint_temp_dir(const std::string& checkpoints_dir, int64_t step) {
  return (fs::path(checkpoints_dir) / (".tmp-" + checkpoint_name(step))).string();
}

std::string prepare_checkpoint_dir(const std::string& checkpoints_dir, int64_t step) {
  fs::create_directories(checkpoints_dir);
  auto tmp = checkpoint_temp_dir(checkpoints_dir, step);
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  return tmp;
}

int remove_stale_checkpoint_temps(const std::string& checkpoints_dir) {
  int removed = 0;
  std::error_code ec;
  for (auto& entry : fs::directory_iterator(checkpoints_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(".tmp-step-", 0) != 0 && name != ".latest.tmp") continue;
    std::error_code remove_ec;
    fs::remove_all(entry.path(), remove_ec);
    if (remove_ec) {
      log::warn("could not remove {}, left by an unfinished checkpoint save: {}", entry.path().string(),
                remove_ec.message());
      continue;
    }
    log::warn("removed {}, left by a checkpoint save that did not finish", entry.path().string());
    ++removed;
  }
  return removed;
}

void write_checkpoint_manifest(const std::string& dir, const std::map<std::string, FileDigest>& known) {
  nlohmann::json files = nlohmann::json::object();
  for (auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    auto rel = fs::relative(entry.path(), dir).string();
    fsync_path(entry.path().string());
    auto it = known.find(rel);
    FileDigest digest = it != known.end() && it->second.size == entry.file_size() ? it->second
                                                                                  : file_digest(entry.path().string());
    files[rel] = {{"size", digest.size}, {"fnv1a64", hex64(digest.fnv1a64)}};
  }
  for (auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_directory()) fsync_path(entry.path().string());  // the names of files in subfolders
  }
  nlohmann::json manifest = {{"format", "forma-checkpoint-1"}, {"files", files}};
  write_file_atomic((fs::path(dir) / kManifest).string(), manifest.dump(2) + "\n");
}

std::string finish_checkpoint(const std::string& checkpoints_dir, int64_t step, int keep_last,
                              const std::map<std::string, FileDigest>& known) {
  auto name = checkpoint_name(step);
  auto tmp = checkpoint_temp_dir(checkpoints_dir, step);
  auto final_dir = (fs::path(checkpoints_dir) / name).string();
  try {
    write_checkpoint_manifest(tmp, known);  // fsyncs every file first, then writes the manifest atomically
    fsync_path(tmp);
    fs::remove_all(final_dir);  // a folder of the same step from an interrupted earlier run
    fs::rename(tmp, final_dir);
    fsync_path(checkpoints_dir);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  point_latest(checkpoints_dir, name);
  prune(checkpoints_dir, keep_last);
  return final_dir;
}

std::string commit_checkpoint(const std::string& checkpoints_dir, int64_t step, int keep_last,
                              const std::function<void(const std::string& dir)>& write) {
  auto tmp = prepare_checkpoint_dir(checkpoints_dir, step);
  try {
    write(tmp);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  return finish_checkpoint(checkpoints_dir, step, keep_last);
}

void verify_checkpoint(const std::string& dir, const std::vector<std::string>& required_files) {
  auto manifest_path = (fs::path(dir) / kManifest).string();
  check(fs::is_regular_file(manifest_path), "{}: no manifest.json (an incomplete or foreign checkpoint)", dir);
  nlohmann::json manifest;
  try {
    manifest = nlohmann::json::parse(read_file(manifest_path));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: manifest is not valid JSON: {}", manifest_path, e.what());
  }
  check(manifest.is_object() && manifest.contains("files") && manifest["files"].is_object(),
        "{}: manifest has no 'files' object", manifest_path);
  for (auto& [rel, info] : manifest["files"].items()) {
    auto path = (fs::path(dir) / rel).string();
    check(fs::is_regular_file(path), "{}: file '{}' listed in the manifest is missing", dir, rel);
    check(info.is_object() && info.contains("size") && info.contains("fnv1a64"),
          "{}: manifest entry '{}' lacks size or fnv1a64", manifest_path, rel);
    auto size = fs::file_size(path);
    check(info["size"].is_number_unsigned() && size == info["size"].get<uint64_t>(),
          "{}: file '{}' has {} bytes, the manifest says {}", dir, rel, size, info["size"].dump());
    auto sum = hex64(fnv1a64_file(path));
    check(info["fnv1a64"] == sum, "{}: file '{}' checksum {} does not match the manifest ({})", dir, rel, sum,
          info["fnv1a64"].dump());
  }
  for (auto& rel : required_files) {
    check(manifest["files"].contains(rel), "{}: required file '{}' is not in the manifest", dir, rel);
  }
}

void verify_if_checkpoint(const std::string& dir) {
  if (fs::exists(fs::path(dir) / kManifest) || fs::exists(fs::path(dir) / "trainer_state.json")) {
    verify_checkpoint(dir, {});
  }
}

std::string find_resumable_checkpoint(const std::string& requested, const std::string& checkpoints_dir,
                                      const std::vector<std::string>& required_files) {
  fs::path start = requested.empty() ? fs::path(checkpoints_dir) / kLatest : fs::path(requested);
  if (fs::is_directory(start) && !fs::is_symlink(start) && parse_step_name(start.filename().string()) < 0 &&
      !fs::exists(start / kManifest)) {
    start /= kLatest;  // a checkpoints folder: start from its latest pointer
  }
  fs::path parent = start.parent_path();
  int64_t below = INT64_MAX;  // fall back to step folders older than this
  std::vector<std::string> reasons;
  auto try_dir = [&](const fs::path& dir) -> bool {
    try {
      verify_checkpoint(dir.string(), required_files);
      return true;
    } catch (const Error& e) {
      log::warn("refusing checkpoint: {}; falling back to the previous one", e.what());
      reasons.push_back(e.what());
      return false;
    }
  };
  if (fs::is_symlink(start) || fs::exists(start)) {
    fs::path target = fs::is_symlink(start) ? parent / fs::read_symlink(start) : start;
    int64_t step = parse_step_name(target.filename().string());
    if (step >= 0) below = step;
    if (fs::exists(target) && try_dir(target)) return target.string();
    if (!fs::exists(target)) reasons.push_back(target.string() + ": does not exist");
  } else {
    check(fs::is_directory(parent), "--resume: no checkpoint at {} (folder {} does not exist)", start.string(),
          parent.string());
    log::warn("{} does not exist; looking for the newest valid step folder in {}", start.string(), parent.string());
  }
  for (auto& [step, dir] : step_folders(parent.string())) {
    if (step >= below) continue;
    if (try_dir(dir)) return dir;
  }
  std::string all;
  for (auto& r : reasons) all += "\n  " + r;
  fail("no valid checkpoint to resume from in {}{}", parent.string(), all.empty() ? " (none found)" : all);
}

}  // namespace forma::train
