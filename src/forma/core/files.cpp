#include "forma/core/files.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "forma/core/error.h"

namespace forma {

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  check(fd >= 0, "cannot open {}: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail("cannot stat {}: {}", path, std::strerror(errno));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    check(p != MAP_FAILED, "cannot mmap {}: {}", path, std::strerror(errno));
    data_ = static_cast<const uint8_t*>(p);
  } else {
    ::close(fd);
  }
}

MappedFile::~MappedFile() { release(); }

void MappedFile::release() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
}

void MappedFile::release_pages(const void* begin, size_t nbytes) const {
  if (!data_ || nbytes == 0) return;
  const auto map_begin = reinterpret_cast<uintptr_t>(data_);
  const auto map_end = map_begin + size_;
  auto first = std::max(reinterpret_cast<uintptr_t>(begin), map_begin);
  auto last = std::min(reinterpret_cast<uintptr_t>(begin) + nbytes, map_end);
  if (first >= last) return;
  // Pages partly outside the range are dropped too: harmless for a read-only map (see the header).
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  first = first / page * page;
  last = (last + page - 1) / page * page;
  ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

MappedFile::MappedFile(MappedFile&& other) noexcept { *this = std::move(other); }

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot open {}: {}", path, std::strerror(errno));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  check(fd >= 0, "cannot open {} to sync it: {}", path, std::strerror(errno));
  int rc = ::fsync(fd);
  ::close(fd);
  check(rc == 0, "fsync of {} failed: {}", path, std::strerror(errno));
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  check(fd >= 0, "cannot create {}: {}", tmp, std::strerror(errno));
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      fail("cannot write {}: {}", path, std::strerror(e));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    fail("cannot flush {}: {}", path, std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    fail("cannot rename {} to {}: {}", tmp, path, std::strerror(e));
  }
  auto parent = std::filesystem::path(path).parent_path();
  fsync_path(parent.empty() ? "." : parent.string());
}

void write_folder_atomic(const std::string& to, const std::function<void(const std::string& tmp)>& fill) {
  namespace fs = std::filesystem;
  fs::path target = fs::absolute(to).lexically_normal();
  if (!target.has_filename()) target = target.parent_path();  // "out/" -> "out"
  check(!fs::exists(target) || (fs::is_directory(target) && fs::is_empty(target)),
        "{}: already exists and is not an empty folder", to);
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  check(!ec, "cannot create {}: {}", target.parent_path().string(), ec.message());
  // A sibling of the target (same file system, so the final rename is atomic), hidden by its dot.
  const fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".tmp-" + std::to_string(::getpid()));
  fs::remove_all(tmp, ec);
  fs::create_directory(tmp, ec);
  check(!ec, "cannot create {}: {}", tmp.string(), ec.message());
  try {
    fill(tmp.string());
    fsync_path(tmp.string());
    if (fs::exists(target)) fs::remove(target);  // empty, checked above
    fs::rename(tmp, target);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  fsync_path(target.parent_path().string());
}

void check_output_is_not_input(const std::string& output, const std::vector<std::string>& inputs,
                               std::string_view option) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(output, ec)) return;  // an input exists, so a missing output is none of them
  for (const auto& input : inputs) {
    std::error_code same_ec;
    check(!fs::equivalent(output, input, same_ec) || same_ec,
          "{} {}: that is the input {} itself; writing it would destroy what is being read (choose another {})",
          option, output, input, option);
  }
}

}  // namespace forma
