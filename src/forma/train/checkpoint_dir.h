// The on-disk protocol of checkpoint folders, independent of what they contain. A checkpoint is
// written into CHECKPOINTS/.tmp-step-NNNNNNN, every file fsynced, then manifest.json (each file's
// size and FNV-1a 64 checksum) written last, the folder renamed to step-NNNNNNN, and only then the
// `latest` pointer (a symlink, so that CHECKPOINTS/latest is itself a usable model folder) replaced
// atomically. A folder without a valid manifest is never trusted: resume skips it and falls back to
// the previous valid checkpoint.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace forma::train {

// FNV-1a 64 of a whole file (memory-mapped); throws naming the file.
uint64_t fnv1a64_file(const std::string& path);

// "step-0000042"
std::string checkpoint_name(int64_t step);

// Creates the temp folder, calls write(temp_dir) to fill it, then fsyncs, writes the manifest,
// renames, updates `latest` and deletes all but the newest `keep_last` step folders.
// Returns the final folder. On an exception the temp folder is removed and nothing else changes.
std::string commit_checkpoint(const std::string& checkpoints_dir, int64_t step, int keep_last,
                              const std::function<void(const std::string& dir)>& write);

// Throws forma::Error saying what is wrong (no manifest, a missing file, a size or checksum
// mismatch, a required file absent from the manifest).
void verify_checkpoint(const std::string& dir, const std::vector<std::string>& required_files);

// The checkpoint to resume from. `requested` may be empty (CHECKPOINTS/latest), a checkpoints
// folder, a `latest` pointer or a step folder. Invalid candidates are reported with a warning and
// the next older step folder beside them is tried. Throws when none is valid.
std::string find_resumable_checkpoint(const std::string& requested, const std::string& checkpoints_dir,
                                      const std::vector<std::string>& required_files);

}  // namespace forma::train
