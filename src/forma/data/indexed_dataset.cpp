#include "forma/data/indexed_dataset.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>

#include "forma/core/error.h"

namespace forma::data {

namespace {

constexpr char kMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', '\0', '\0'};
constexpr size_t kHeaderSize = 9 + 8 + 1 + 8 + 8;  // magic, version, dtype, S, D = 34 bytes
constexpr size_t kWriteBuffer = 1 << 20;

template <typename T>
T load(const uint8_t* p) {  // the .idx arrays start at byte 34: not aligned for direct loads
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

template <typename T>
void append(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));
}

bool known_dtype(uint8_t code) { return code >= 1 && code <= 8; }

template <typename T>
void convert(const uint8_t* src, int64_t count, int32_t* out, const std::string& path, int64_t base) {
  for (int64_t i = 0; i < count; ++i) {
    T v = load<T>(src + i * sizeof(T));
    if constexpr (std::is_signed_v<T> || sizeof(T) >= 4) {
      if (v < 0 || static_cast<int64_t>(v) > std::numeric_limits<int32_t>::max())
        fail("{}: token id {} at byte {} is not a valid id", path, static_cast<int64_t>(v),
             base + i * static_cast<int64_t>(sizeof(T)));
    }
    out[i] = static_cast<int32_t>(v);
  }
}

}  // namespace

TokenDType dtype_for_vocab(int64_t vocab_size) {
  return vocab_size < 65500 ? TokenDType::uint16 : TokenDType::int32;
}

int dtype_size(TokenDType dtype) {
  switch (dtype) {
    case TokenDType::uint8: case TokenDType::int8: return 1;
    case TokenDType::int16: case TokenDType::uint16: return 2;
    case TokenDType::int32: case TokenDType::float32: return 4;
    case TokenDType::int64: case TokenDType::float64: return 8;
  }
  return 0;
}

const char* dtype_name(TokenDType dtype) {
  switch (dtype) {
    case TokenDType::uint8: return "uint8";
    case TokenDType::int8: return "int8";
    case TokenDType::int16: return "int16";
    case TokenDType::int32: return "int32";
    case TokenDType::int64: return "int64";
    case TokenDType::float64: return "float64";
    case TokenDType::float32: return "float32";
    case TokenDType::uint16: return "uint16";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------- writer

IndexedDatasetWriter::IndexedDatasetWriter(std::string prefix, TokenDType dtype)
    : prefix_(std::move(prefix)), dtype_(dtype) {
  check(dtype == TokenDType::uint16 || dtype == TokenDType::int32 || dtype == TokenDType::uint8,
        "{}: forma writes token ids as uint16 or int32 (and SFT masks as uint8), not {}", prefix_, dtype_name(dtype));
  std::string pid = std::to_string(::getpid());
  bin_tmp_ = bin_path(prefix_) + ".tmp." + pid;
  idx_tmp_ = idx_path(prefix_) + ".tmp." + pid;
  bin_ = std::fopen(bin_tmp_.c_str(), "wb");
  check(bin_ != nullptr, "cannot create {}: {}", bin_tmp_, std::strerror(errno));
  buffer_.reserve(kWriteBuffer);
}

IndexedDatasetWriter::~IndexedDatasetWriter() {
  if (!finished_) discard();
}

void IndexedDatasetWriter::discard() {
  if (bin_) std::fclose(bin_);
  bin_ = nullptr;
  std::remove(bin_tmp_.c_str());
  std::remove(idx_tmp_.c_str());
}

void IndexedDatasetWriter::write_bytes(const void* data, size_t size) {
  if (size > 0 && std::fwrite(data, 1, size, bin_) != size)
    fail("cannot write {}: {}", bin_tmp_, std::strerror(errno));
}

void IndexedDatasetWriter::add_document(const int32_t* ids, size_t count) {
  check(!finished_, "{}: document added after finish()", prefix_);
  check(count <= static_cast<size_t>(std::numeric_limits<int32_t>::max()),
        "{}: document of {} tokens exceeds the format's int32 length", prefix_, count);
  const int32_t limit = dtype_ == TokenDType::uint8    ? 255
                        : dtype_ == TokenDType::uint16 ? 65535
                                                       : std::numeric_limits<int32_t>::max();
  for (size_t i = 0; i < count; ++i) {
    int32_t id = ids[i];
    check(id >= 0 && id <= limit, "{}: token id {} does not fit {}", prefix_, id, dtype_name(dtype_));
    if (dtype_ == TokenDType::uint8) {  // SFT loss masks (sft_dataset.h)
      buffer_.push_back(static_cast<uint8_t>(id));
    } else if (dtype_ == TokenDType::uint16) {
      auto v = static_cast<uint16_t>(id);
      buffer_.insert(buffer_.end(), reinterpret_cast<uint8_t*>(&v), reinterpret_cast<uint8_t*>(&v) + 2);
    } else {
      buffer_.insert(buffer_.end(), reinterpret_cast<uint8_t*>(&id), reinterpret_cast<uint8_t*>(&id) + 4);
    }
    if (buffer_.size() >= kWriteBuffer) {
      write_bytes(buffer_.data(), buffer_.size());
      buffer_.clear();
    }
  }
  lengths_.push_back(static_cast<int32_t>(count));
  tokens_ += static_cast<int64_t>(count);
}

void IndexedDatasetWriter::finish() {
  check(!finished_, "{}: finish() called twice", prefix_);
  write_bytes(buffer_.data(), buffer_.size());
  buffer_.clear();
  if (std::fflush(bin_) != 0 || ::fsync(::fileno(bin_)) != 0)
    fail("cannot flush {}: {}", bin_tmp_, std::strerror(errno));
  std::fclose(bin_);
  bin_ = nullptr;

  const auto sequences = static_cast<uint64_t>(lengths_.size());
  std::string idx(kMagic, sizeof(kMagic));
  append<uint64_t>(idx, 1);
  append<uint8_t>(idx, static_cast<uint8_t>(dtype_));
  append<uint64_t>(idx, sequences);
  append<uint64_t>(idx, sequences + 1);  // one sequence per document, plus the leading 0
  idx.reserve(idx.size() + sequences * 20 + 8);
  for (int32_t length : lengths_) append<int32_t>(idx, length);
  int64_t pointer = 0;
  for (int32_t length : lengths_) {
    append<int64_t>(idx, pointer);
    pointer += static_cast<int64_t>(length) * dtype_size(dtype_);
  }
  for (uint64_t d = 0; d <= sequences; ++d) append<int64_t>(idx, static_cast<int64_t>(d));

  // Two files cannot be replaced in one atomic step. The old .idx goes first, then the new .bin,
  // then the new .idx: a reader (which needs both) sees the old pair, no dataset, or the new pair,
  // never an index over the wrong data file.
  std::error_code ec;
  std::filesystem::remove(idx_path(prefix_), ec);
  check(!ec, "cannot replace {}: {}", idx_path(prefix_), ec.message());
  std::filesystem::rename(bin_tmp_, bin_path(prefix_), ec);
  check(!ec, "cannot rename {} to {}: {}", bin_tmp_, bin_path(prefix_), ec.message());
  write_file_atomic(idx_path(prefix_), idx);
  finished_ = true;
}

// ---------------------------------------------------------------------------------------- reader

IndexedDataset::IndexedDataset(const std::string& prefix)
    : prefix_(prefix), idx_(idx_path(prefix)), bin_(bin_path(prefix)) {
  parse_index();
  check_sequences();
}

void IndexedDataset::parse_index() {
  const std::string& path = idx_.path();
  const uint8_t* p = idx_.data();
  const size_t size = idx_.size();
  check(size >= kHeaderSize, "{}: {} bytes, too short for the {}-byte MMIDIDX header", path, size,
        kHeaderSize);
  check(std::memcmp(p, kMagic, sizeof(kMagic)) == 0,
        "{}: not a Megatron indexed dataset index (magic is not MMIDIDX)", path);
  auto version = load<uint64_t>(p + 9);
  check(version == 1, "{}: index version {} (only version 1 exists)", path, version);
  uint8_t code = p[17];
  check(known_dtype(code), "{}: unknown dtype code {}", path, code);
  dtype_ = static_cast<TokenDType>(code);
  check(dtype_ != TokenDType::float32 && dtype_ != TokenDType::float64,
        "{}: dtype {} cannot hold token ids", path, dtype_name(dtype_));
  auto sequences = load<uint64_t>(p + 18);
  auto documents = load<uint64_t>(p + 26);
  // Sizes are checked in a way that cannot overflow: each count is first bounded by the file size.
  check(sequences <= size / 12 && documents <= size / 8,
        "{}: header claims {} sequences and {} document entries, more than its {} bytes hold", path,
        sequences, documents, size);
  const uint64_t expected = kHeaderSize + sequences * 12 + documents * 8;
  check(size == expected || size == expected + sequences,
        "{}: {} bytes, but its header ({} sequences, {} document entries) needs {} "
        "(truncated or corrupt)", path, size, sequences, documents, expected);
  check(documents >= 1, "{}: document_indices is empty (it must start with 0)", path);
  sequence_count_ = static_cast<int64_t>(sequences);
  document_count_ = static_cast<int64_t>(documents);
  lengths_ = p + kHeaderSize;
  pointers_ = lengths_ + sequences * 4;
  documents_ = pointers_ + sequences * 8;
}

void IndexedDataset::check_sequences() {
  const std::string& path = idx_.path();
  const auto bin_size = static_cast<int64_t>(bin_.size());
  const int64_t item = dtype_size(dtype_);
  for (int64_t s = 0; s < sequence_count_; ++s) {
    int32_t length = sequence_length(s);
    int64_t pointer = sequence_pointer(s);
    check(length >= 0, "{}: sequence {} has negative length {}", path, s, length);
    check(pointer >= 0 && pointer % item == 0 && pointer <= bin_size &&
              length * item <= bin_size - pointer,
          "{}: sequence {} ({} tokens at byte {}) lies outside {} ({} bytes: truncated or corrupt)",
          path, s, length, pointer, bin_.path(), bin_size);
    total_tokens_ += length;
  }
  int64_t previous = 0;
  for (int64_t d = 0; d < document_count_; ++d) {
    int64_t begin = load<int64_t>(documents_ + d * 8);
    check(d > 0 || begin == 0, "{}: document_indices[0] is {}, not 0", path, begin);
    check(begin >= previous && begin <= sequence_count_,
          "{}: document_indices[{}] = {} is out of order or beyond the {} sequences", path, d, begin,
          sequence_count_);
    previous = begin;
  }
  check(previous == sequence_count_, "{}: the last document index is {}, not the sequence count {}",
        path, previous, sequence_count_);
}

int32_t IndexedDataset::sequence_length(int64_t sequence) const {
  check(sequence >= 0 && sequence < sequence_count_, "{}: sequence {} out of range [0, {})", prefix_,
        sequence, sequence_count_);
  return load<int32_t>(lengths_ + sequence * 4);
}

int64_t IndexedDataset::sequence_pointer(int64_t sequence) const {
  check(sequence >= 0 && sequence < sequence_count_, "{}: sequence {} out of range [0, {})", prefix_,
        sequence, sequence_count_);
  return load<int64_t>(pointers_ + sequence * 8);
}

int64_t IndexedDataset::document_begin(int64_t document) const {
  check(document >= 0 && document < document_count_, "{}: document {} out of range [0, {}]", prefix_,
        document, document_count_ - 1);
  return load<int64_t>(documents_ + document * 8);
}

void IndexedDataset::read(int64_t sequence, int64_t offset, int64_t count, int32_t* out) const {
  int32_t length = sequence_length(sequence);
  check(offset >= 0 && count >= 0 && offset + count <= length,
        "{}: tokens [{}, {}) of sequence {} out of range (length {})", prefix_, offset, offset + count,
        sequence, length);
  const uint8_t* src = bin_.data() + sequence_pointer(sequence) + offset * dtype_size(dtype_);
  const std::string& path = bin_.path();
  const int64_t base = src - bin_.data();
  switch (dtype_) {
    case TokenDType::uint8: convert<uint8_t>(src, count, out, path, base); break;
    case TokenDType::int8: convert<int8_t>(src, count, out, path, base); break;
    case TokenDType::int16: convert<int16_t>(src, count, out, path, base); break;
    case TokenDType::uint16: convert<uint16_t>(src, count, out, path, base); break;
    case TokenDType::int32: convert<int32_t>(src, count, out, path, base); break;
    case TokenDType::int64: convert<int64_t>(src, count, out, path, base); break;
    default: fail("{}: dtype {} cannot hold token ids", path, dtype_name(dtype_));
  }
}

std::vector<int32_t> IndexedDataset::sequence(int64_t sequence) const {
  std::vector<int32_t> out(static_cast<size_t>(sequence_length(sequence)));
  read(sequence, 0, static_cast<int64_t>(out.size()), out.data());
  return out;
}

}  // namespace forma::data
