// safetensors reader/writer: real HF-written fixture files, a round trip, and one malformed file per
// check (each error must name the file).
#include "forma/io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "test_paths.h"

namespace forma {
namespace {

// A file made of an 8-byte little-endian length, `header` and `data`.
std::string write_raw(const std::string& name, const std::string& header, const std::string& data,
                      uint64_t declared_len = UINT64_MAX) {
  std::string path = test::scratch_dir() + "/" + name;
  uint64_t len = declared_len == UINT64_MAX ? header.size() : declared_len;
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((len >> (8 * i)) & 0xff);
  bytes += header + data;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// Expects SafetensorsFile(path) to throw a forma::Error naming the file and containing `words`.
void expect_rejected(const std::string& path, const std::string& words) {
  try {
    SafetensorsFile file(path);
    FAIL() << "accepted " << path;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(words), std::string::npos) << msg;
  }
}

TEST(Safetensors, ReadsHuggingFaceFile) {
  std::string path = test::fixture("hf-tiny/llama/model.safetensors");
  SafetensorsFile file(path);
  EXPECT_EQ(file.metadata().at("format"), "pt");
  const TensorInfo& q = file.get("model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(q.dtype, DType::F32);
  EXPECT_EQ(q.shape, (std::vector<int64_t>{64, 64}));
  EXPECT_EQ(q.nbytes, 64u * 64 * 4);
  const TensorInfo& k = file.get("model.layers.0.self_attn.k_proj.weight");
  EXPECT_EQ(k.shape, (std::vector<int64_t>{32, 64}));  // 2 kv heads x head_dim 16
  EXPECT_TRUE(file.contains("lm_head.weight"));
  EXPECT_FALSE(file.contains("nope"));
  EXPECT_THROW(file.get("nope"), Error);
  // 2 layers x 9 tensors + embed + norm + lm_head (README: untied llama)
  EXPECT_EQ(file.names().size(), 21u);
}

TEST(Safetensors, ReferenceInputIdsAreInt64) {
  SafetensorsFile file(test::fixture("hf-tiny/llama/reference.safetensors"));
  const TensorInfo& ids = file.get("input_ids");
  ASSERT_EQ(ids.dtype, DType::I64);
  ASSERT_EQ(ids.shape, (std::vector<int64_t>{2, 16}));
  int64_t first[2];
  std::memcpy(first, ids.data, sizeof first);
  // reference.json inputs.input_ids[0][0..1] of the llama fixture
  EXPECT_EQ(first[0], 290);
  EXPECT_EQ(first[1], 210);
}

TEST(Safetensors, RoundTripKeepsBytesShapesAndMetadata) {
  std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
  std::vector<int64_t> b = {42, -7};
  std::vector<uint16_t> c = {0x3f80};  // bf16 1.0
  std::string path = test::scratch_dir() + "/rt.safetensors";
  write_safetensors(path,
                    {{"b", DType::I64, {2}, b.data(), 16},
                     {"a", DType::F32, {2, 3}, a.data(), 24},
                     {"c", DType::BF16, {1, 1}, c.data(), 2},
                     {"empty", DType::F32, {0, 4}, nullptr, 0}},
                    {{"format", "pt"}, {"step", "12"}});
  SafetensorsFile file(path);
  EXPECT_EQ(file.names(), (std::vector<std::string>{"a", "b", "c", "empty"}));
  EXPECT_EQ(file.metadata().at("step"), "12");
  const TensorInfo& ta = file.get("a");
  EXPECT_EQ(ta.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(ta.data, a.data(), 24), 0);
  EXPECT_EQ(std::memcmp(file.get("b").data, b.data(), 16), 0);
  EXPECT_EQ(file.get("c").dtype, DType::BF16);
  EXPECT_EQ(file.get("empty").nbytes, 0u);
  // The header is padded so that the data section is 8-byte aligned.
  std::string raw = read_file(path);
  uint64_t len = 0;
  std::memcpy(&len, raw.data(), 8);
  EXPECT_EQ((8 + len) % 8, 0u);
}

TEST(Safetensors, FilledTensorsAreWrittenInOrderedChunks) {
  // 5 Mi floats (20 MiB): one full 16 MiB chunk, then the rest.
  const size_t count = 5u << 20;
  std::vector<std::pair<size_t, size_t>> calls;
  TensorToWrite big{"big", DType::F32, {static_cast<int64_t>(count)}, nullptr, count * 4, {}};
  big.fill = [&](uint8_t* out, size_t begin, size_t end) {
    calls.emplace_back(begin, end);
    for (size_t i = begin; i < end; i += 4) {
      const float value = static_cast<float>(i / 4);
      std::memcpy(out + (i - begin), &value, 4);
    }
  };
  std::vector<float> small = {1, 2};
  std::string path = test::scratch_dir() + "/filled.safetensors";
  write_safetensors(path, {big, {"small", DType::F32, {2}, small.data(), 8, {}}}, {});
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0], std::make_pair(size_t{0}, size_t{16u << 20}));
  EXPECT_EQ(calls[1], std::make_pair(size_t{16u << 20}, count * 4));
  SafetensorsFile file(path);
  const auto* data = reinterpret_cast<const float*>(file.get("big").data);
  size_t wrong = 0;
  for (size_t i = 0; i < count; ++i) wrong += data[i] != static_cast<float>(i);
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(std::memcmp(file.get("small").data, small.data(), 8), 0);
}

TEST(Safetensors, WriterRejectsSizeMismatch) {
  std::vector<float> a(3);
  std::string path = test::scratch_dir() + "/bad.safetensors";
  EXPECT_THROW(write_safetensors(path, {{"a", DType::F32, {2, 2}, a.data(), 12}}, {}), Error);
  EXPECT_FALSE(std::ifstream(path).good());  // nothing half-written
}

TEST(Safetensors, RejectsTruncatedFile) {
  std::string path = test::scratch_dir() + "/t.safetensors";
  std::ofstream(path, std::ios::binary) << "abc";
  expect_rejected(path, "shorter");
  // A valid file cut in the data section: offsets now point past the end.
  std::string good = read_file(test::fixture("hf-tiny/llama/model.safetensors"));
  std::string cut = test::scratch_dir() + "/cut.safetensors";
  std::ofstream(cut, std::ios::binary) << good.substr(0, good.size() - 100);
  expect_rejected(cut, "outside the data section");
}

TEST(Safetensors, RejectsHeaderLengthBeyondFile) {
  expect_rejected(write_raw("h.safetensors", "{}", "", 5000), "exceeds the file size");
  expect_rejected(write_raw("h2.safetensors", "{}", "", 1ull << 40), "exceeds the 100 MB limit");
}

TEST(Safetensors, RejectsBadJson) {
  expect_rejected(write_raw("j.safetensors", "{\"a\": {\"dtype\": ", ""), "not valid JSON");
  expect_rejected(write_raw("j2.safetensors", "[1, 2]", ""), "not a JSON object");
}

TEST(Safetensors, RejectsOverlappingOffsets) {
  std::string header =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  expect_rejected(write_raw("o.safetensors", header, std::string(12, '\0')), "overlaps");
}

TEST(Safetensors, RejectsGapInDataSection) {
  std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  expect_rejected(write_raw("g.safetensors", header, std::string(8, '\0')), "belong to no tensor");
  std::string tail = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  expect_rejected(write_raw("g2.safetensors", tail, std::string(8, '\0')), "cover 4");
}

TEST(Safetensors, RejectsShapeSizeMismatch) {
  std::string header = R"({"w":{"dtype":"F32","shape":[3,3],"data_offsets":[0,32]}})";
  expect_rejected(write_raw("s.safetensors", header, std::string(32, '\0')), "'w'");
  std::string negative = R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})";
  expect_rejected(write_raw("s2.safetensors", negative, std::string(4, '\0')), "negative");
}

TEST(Safetensors, RejectsUnknownDtype) {
  std::string header = R"({"w":{"dtype":"F8_E9","shape":[1],"data_offsets":[0,1]}})";
  expect_rejected(write_raw("d.safetensors", header, std::string(1, '\0')), "unknown dtype 'F8_E9'");
}

TEST(Safetensors, RejectsNonStringMetadata) {
  std::string header = R"({"__metadata__":{"format":3}})";
  expect_rejected(write_raw("m.safetensors", header, ""), "__metadata__");
}

TEST(Safetensors, RejectsMissingFields) {
  std::string header = R"({"w":{"dtype":"F32","shape":[1]}})";
  expect_rejected(write_raw("f.safetensors", header, std::string(4, '\0')), "data_offsets");
}

// Found by fuzz/fuzz_safetensors: the dimensions of an empty tensor before its 0 multiplied past
// int64 in numel() (undefined behaviour; UBSan's report under make test-asan).
TEST(Safetensors, EmptyTensorWithHugeDimensionsHasNoElements) {
  std::string header = R"({"e":{"dtype":"U8","shape":[4294967296,2147483648,0],"data_offsets":[0,0]}})";
  SafetensorsFile file(write_raw("e.safetensors", header, ""));
  EXPECT_EQ(file.get("e").numel(), 0);
  EXPECT_EQ(file.get("e").nbytes, 0u);
}

}  // namespace
}  // namespace forma
