// The on-disk protocol of checkpoint folders, independent of what they contain. A checkpoint is
// written into CHECKPOINTS/.tmp-step-NNNNNNN, every file fsynced, then manifest.json (each file's
// size and FNV-1a 64 checksum) written last, the folder renamed to step-NNNNNNN, and only then the
// `latest` pointer (a symlink, so that CHECKPOINTS/latest is itself a usable model folder) replaced
// atomically. A folder without a valid manifest is never trusted: resume skips it and falls back to
// the previous valid checkpoint.
//
// A checkpoint written by many processes (dist_checkpoint.h) takes the steps one by one, between
// barriers: rank 0 prepare_checkpoint_dir, every rank writes its files into the temp folder (whose
// name all ranks know: checkpoint_temp_dir), rank 0 writes the rest and finish_checkpoint.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace forma::train {

// FNV-1a 64 of a whole file (memory-mapped); throws naming the file.
uint64_t fnv1a64_file(const std::string& path);

// A file's size and FNV-1a 64, as the manifest records them.
struct FileDigest {
  uint64_t size = 0;
  uint64_t fnv1a64 = 0;
};
FileDigest file_digest(const std::string& path);

// "step-0000042"
std::string checkpoint_name(int64_t step);
// CHECKPOINTS/.tmp-step-NNNNNNN: where `step` is written before its commit.
std::string checkpoint_temp_dir(const std::string& checkpoints_dir, int64_t step);

// Creates the empty temp folder of `step` (removing what an interrupted attempt left there).
std::string prepare_checkpoint_dir(const std::string& checkpoints_dir, int64_t step);

// Removes what saves that never finished left in CHECKPOINTS (a process killed with SIGKILL cannot
// clean up): .tmp-step-* folders and a .latest.tmp link, each with a warning. Only for the one
// process that writes checkpoints, when no save is running (a run's start). Returns how many.
int remove_stale_checkpoint_temps(const std::string& checkpoints_dir);

// The commit of a filled temp folder: fsyncs every file, writes the manifest last, renames the
// folder to step-NNNNNNN, updates `latest` and prunes to `keep_last`. `known` gives the digests of
// files (by path relative to the folder) that their writers already computed, so that one process
// does not read back everything the others wrote; a file whose size differs is digested again.
// On an exception the temp folder is removed. Returns the final folder.
std::string finish_checkpoint(const std::string& checkpoints_dir, int64_t step, int keep_last,
                              const std::map<std::string, FileDigest>& known = {});

// Writes DIR/manifest.json for the files in `dir` (fsynced first), as finish_checkpoint does: for
// checkpoint folders written elsewhere (forma ckpt reshard).
void write_checkpoint_manifest(const std::string& dir, const std::map<std::string, FileDigest>& known = {});

// One process: prepare_checkpoint_dir, write(temp_dir) to fill it, then finish_checkpoint.
// Returns the final folder. On an exception the temp folder is removed and nothing else changes.
std::string commit_checkpoint(const std::string& checkpoints_dir, int64_t step, int keep_last,
                              const std::function<void(const std::string& dir)>& write);

// Throws forma::Error saying what is wrong (no manifest, a missing file, a size or checksum
// mismatch, a required file absent from the manifest).
void verify_checkpoint(const std::string& dir, const std::vector<std::string>& required_files);

// Verifies `dir` as verify_checkpoint does (no required files) when it is a folder a training run
// wrote (a manifest.json or trainer_state.json in it): what loads a model folder for inference,
// evaluation or conversion calls it, so that a checkpoint whose files changed since their commit is
// refused naming the file. Other folders (Hugging Face model folders) pass unchecked.
void verify_if_checkpoint(const std::string& dir);

// The checkpoint to resume from. `requested` may be empty (CHECKPOINTS/latest), a checkpoints
// folder, a `latest` pointer or a step folder. Invalid candidates are reported with a warning and
// the next older step folder beside them is tried. Throws when none is valid.
std::string find_resumable_checkpoint(const std::string& requested, const std::string& checkpoints_dir,
                                      const std::vector<std::string>& required_files);

}  // namespace forma::train
