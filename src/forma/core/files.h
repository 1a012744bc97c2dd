// File helpers shared by every component: read-only memory maps, whole-file reads, and atomic
// writes (temp file, fsync, rename, fsync of the folder) so that a crash never leaves half a file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace forma {

class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path);  // throws forma::Error naming the path
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }
  // Drops the pages holding [begin, begin + nbytes) from this process's resident memory (madvise
  // MADV_DONTNEED). The map is read-only, so no data is lost: a page touched again is read back
  // from the file (or the page cache). Parts of the range outside the map are ignored.
  void release_pages(const void* begin, size_t nbytes) const;

 private:
  void release();
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

std::string read_file(const std::string& path);

// Writes `bytes` to `path` atomically: readers see the old file or the new one, never a mix.
void write_file_atomic(const std::string& path, std::string_view bytes);

// fsync a file or folder by path (folders: makes a rename inside it durable).
void fsync_path(const std::string& path);

// Writes the folder `to` atomically: `fill` writes into a hidden temporary sibling (same file
// system) that is fsynced and renamed to `to` at the end. `to` must not exist or be an empty
// folder (else forma::Error); on an exception the temporary folder is removed, `to` untouched.
void write_folder_atomic(const std::string& to, const std::function<void(const std::string& tmp)>& fill);

// Refuses (forma::Error naming both paths and `option`, the flag that named the output) to write
// `output` when it is one of `inputs`: the same file or folder, also through a symlink or a hard
// link. Called before anything is written, so that a command never replaces what it reads.
void check_output_is_not_input(const std::string& output, const std::vector<std::string>& inputs,
                               std::string_view option);

}  // namespace forma
