#include "forma/io/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>

#include "forma/core/error.h"

namespace forma {

namespace {

struct DTypeEntry {
  DType dtype;
  const char* name;
  size_t size;
};

constexpr DTypeEntry kDTypes[] = {
    {DType::F32, "F32", 4}, {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2},
    {DType::F64, "F64", 8}, {DType::I64, "I64", 8}, {DType::I32, "I32", 4},
    {DType::I16, "I16", 2}, {DType::I8, "I8", 1},   {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1},
};

// The reference implementation refuses headers over 100 MB; so do we (a corrupt length field
// must not make us parse gigabytes of tensor data as JSON).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

uint64_t read_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Product of `shape` times the element size, refusing negatives and overflow.
uint64_t checked_nbytes(const std::vector<int64_t>& shape, size_t element_size,
                        const std::string& path, const std::string& name) {
  uint64_t n = element_size;
  for (int64_t d : shape) {
    check(d >= 0, "{}: tensor '{}' has a negative dimension {}", path, name, d);
    if (d != 0) {
      check(n <= std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d),
            "{}: tensor '{}' shape overflows", path, name);
    }
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

struct Range {
  uint64_t begin, end;
  std::string name;
};

TensorInfo parse_entry(const std::string& path, const std::string& name, const nlohmann::json& e,
                       const uint8_t* data_section, uint64_t data_size, Range* range) {
  check(e.is_object(), "{}: header entry '{}' is not an object", path, name);
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    check(e.contains(key), "{}: tensor '{}' has no '{}'", path, name, key);
  }
  TensorInfo info;
  info.name = name;
  check(e["dtype"].is_string(), "{}: tensor '{}' dtype is not a string", path, name);
  std::string dtype = e["dtype"].get<std::string>();
  check(parse_dtype(dtype, &info.dtype), "{}: tensor '{}' has unknown dtype '{}'", path, name,
        dtype);
  const auto& shape = e["shape"];
  check(shape.is_array(), "{}: tensor '{}' shape is not an array", path, name);
  for (const auto& d : shape) {
    check(d.is_number_integer(), "{}: tensor '{}' shape has a non-integer entry", path, name);
    info.shape.push_back(d.get<int64_t>());
  }
  const auto& offsets = e["data_offsets"];
  check(offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() &&
            offsets[1].is_number_unsigned(),
        "{}: tensor '{}' data_offsets must be two non-negative integers", path, name);
  uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
  check(begin <= end && end <= data_size,
        "{}: tensor '{}' data_offsets [{}, {}] are outside the data section of {} bytes", path,
        name, begin, end, data_size);
  uint64_t expected = checked_nbytes(info.shape, dtype_size(info.dtype), path, name);
  check(end - begin == expected,
        "{}: tensor '{}' spans {} bytes but dtype {} and its shape need {}", path, name,
        end - begin, dtype, expected);
  info.data = data_section + begin;
  info.nbytes = static_cast<size_t>(expected);
  *range = {begin, end, name};
  return info;
}

// Tensors must tile the data section exactly: no overlaps (two tensors aliasing bytes) and no
// gaps (bytes that belong to nothing), as the reference implementation requires.
void check_coverage(const std::string& path, std::vector<Range> ranges, uint64_t data_size) {
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  for (size_t i = 0; i < ranges.size(); ++i) {
    const Range& r = ranges[i];
    if (r.begin < covered) {
      fail("{}: tensor '{}' (bytes {}..{}) overlaps tensor '{}'", path, r.name, r.begin, r.end,
           ranges[i - 1].name);
    }
    check(r.begin == covered, "{}: bytes {}..{} of the data section belong to no tensor (before '{}')",
          path, covered, r.begin, r.name);
    covered = r.end;
  }
  check(covered == data_size, "{}: the data section has {} bytes but its tensors cover {}", path,
        data_size, covered);
}

}  // namespace

size_t dtype_size(DType dtype) {
  for (const auto& e : kDTypes) {
    if (e.dtype == dtype) return e.size;
  }
  fail("invalid DType value {}", static_cast<int>(dtype));
}

const char* dtype_name(DType dtype) {
  for (const auto& e : kDTypes) {
    if (e.dtype == dtype) return e.name;
  }
  fail("invalid DType value {}", static_cast<int>(dtype));
}

bool parse_dtype(const std::string& name, DType* out) {
  for (const auto& e : kDTypes) {
    if (name == e.name) {
      *out = e.dtype;
      return true;
    }
  }
  return false;
}

int64_t TensorInfo::numel() const {
  // An empty tensor's other dimensions may multiply past int64 (its nbytes, 0, is all that is
  // checked); the dimensions of a non-empty one multiply to at most its byte count.
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  const uint64_t size = file_.size();
  check(size >= 8, "{}: not a safetensors file ({} bytes, shorter than the 8-byte header length)",
        path, size);
  const uint64_t header_len = read_le64(file_.data());
  check(header_len <= kMaxHeaderBytes, "{}: header length {} exceeds the 100 MB limit", path,
        header_len);
  check(header_len <= size - 8, "{}: header length {} exceeds the file size {} (truncated file?)",
        path, header_len, size);
  const char* header_begin = reinterpret_cast<const char*>(file_.data() + 8);
  nlohmann::json header = nlohmann::json::parse(header_begin, header_begin + header_len, nullptr,
                                                /*allow_exceptions=*/false);
  check(!header.is_discarded(), "{}: header is not valid JSON", path);
  check(header.is_object(), "{}: header is not a JSON object", path);

  const uint8_t* data_section = file_.data() + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  std::vector<Range> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      check(it->is_object(), "{}: __metadata__ is not an object", path);
      for (auto m = it->begin(); m != it->end(); ++m) {
        check(m->is_string(), "{}: __metadata__ value '{}' is not a string", path, m.key());
        metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }
    Range range;
    tensors_[it.key()] = parse_entry(path, it.key(), *it, data_section, data_size, &range);
    ranges.push_back(range);
  }
  check_coverage(path, std::move(ranges), data_size);
}

const TensorInfo& SafetensorsFile::get(const std::string& name) const {
  auto it = tensors_.find(name);
  check(it != tensors_.end(), "{}: no tensor named '{}'", path(), name);
  return it->second;
}

bool SafetensorsFile::contains(const std::string& name) const { return tensors_.count(name) > 0; }

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, info] : tensors_) out.push_back(name);
  return out;
}

namespace {

void write_all(int fd, const void* data, size_t n, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    check(w > 0, "cannot write {}: {}", path, std::strerror(errno));
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void write_tensor_bytes(int fd, const TensorToWrite& t, const std::string& path) {
  if (!t.fill) {
    write_all(fd, t.data, t.nbytes, path);
    return;
  }
  constexpr size_t kChunk = 16u << 20;
  std::unique_ptr<uint8_t[]> buffer(new uint8_t[std::min(kChunk, t.nbytes)]);
  for (size_t begin = 0; begin < t.nbytes; begin += kChunk) {
    const size_t end = std::min(t.nbytes, begin + kChunk);
    t.fill(buffer.get(), begin, end);
    write_all(fd, buffer.get(), end - begin, path);
  }
}

std::string build_header(const std::vector<const TensorToWrite*>& sorted,
                         const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const TensorToWrite* t : sorted) {
    header[t->name] = {{"dtype", dtype_name(t->dtype)},
                       {"shape", t->shape},
                       {"data_offsets", {offset, offset + t->nbytes}}};
    offset += t->nbytes;
  }
  std::string text = header.dump();
  // Pad with spaces so the data section starts 8-byte aligned (as the reference writer does).
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');
  return text;
}

}  // namespace

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<const TensorToWrite*> sorted;
  for (const auto& t : tensors) {
    check(t.name != "__metadata__" && !t.name.empty(), "{}: invalid tensor name '{}'", path, t.name);
    uint64_t expected = checked_nbytes(t.shape, dtype_size(t.dtype), path, t.name);
    check(expected == t.nbytes, "{}: tensor '{}' has {} bytes but dtype {} and its shape need {}",
          path, t.name, t.nbytes, dtype_name(t.dtype), expected);
    check(t.data != nullptr || t.fill || t.nbytes == 0, "{}: tensor '{}' has no data", path, t.name);
    sorted.push_back(&t);
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const TensorToWrite* a, const TensorToWrite* b) { return a->name < b->name; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    check(sorted[i]->name != sorted[i - 1]->name, "{}: tensor '{}' given twice", path,
          sorted[i]->name);
  }
  const std::string header = build_header(sorted, metadata);

  // Streamed to a temporary file, synced, then renamed: tensors can be larger than we want to
  // copy into one string, and readers must never see half a file.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  check(fd >= 0, "cannot create {}: {}", tmp, std::strerror(errno));
  try {
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(header.size() >> (8 * i));
    write_all(fd, len, 8, tmp);
    write_all(fd, header.data(), header.size(), tmp);
    for (const TensorToWrite* t : sorted) write_tensor_bytes(fd, *t, tmp);
    check(::fsync(fd) == 0, "fsync of {} failed: {}", tmp, std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail("cannot rename {} to {}: {}", tmp, path, std::strerror(err));
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  fsync_path(dir.empty() ? "." : dir);
}

}  // namespace forma
