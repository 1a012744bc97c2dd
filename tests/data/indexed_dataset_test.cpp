#include "forma/data/indexed_dataset.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "test_paths.h"

namespace fs = std::filesystem;
using forma::data::IndexedDataset;
using forma::data::IndexedDatasetWriter;
using forma::data::TokenDType;

namespace {

// Little-endian bytes of an integer, written out without any of the code under test.
template <typename T>
std::string le(T value) {
  std::string out;
  for (size_t i = 0; i < sizeof(T); ++i) out += static_cast<char>((static_cast<uint64_t>(value) >> (8 * i)) & 0xFF);
  return out;
}

std::string write_three_docs(TokenDType dtype) {
  std::string prefix = forma::test::scratch_dir() + "/three";
  IndexedDatasetWriter writer(prefix, dtype);
  writer.add_document({1, 2, 3});
  writer.add_document({65535, 0});
  writer.add_document({7, 8, 9, 10, 11});
  writer.finish();
  return prefix;
}

void expect_error_naming(const std::string& prefix, const std::string& name) {
  try {
    IndexedDataset dataset(prefix);
    FAIL() << "opened a damaged dataset";
  } catch (const forma::Error& e) {
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(IndexedDataset, DtypeFollowsMegatronVocabularyRule) {
  EXPECT_EQ(forma::data::dtype_for_vocab(50257), TokenDType::uint16);
  EXPECT_EQ(forma::data::dtype_for_vocab(65499), TokenDType::uint16);
  EXPECT_EQ(forma::data::dtype_for_vocab(65500), TokenDType::int32);
  EXPECT_EQ(forma::data::dtype_for_vocab(128256), TokenDType::int32);
}

TEST(IndexedDataset, IdxAndBinBytesFollowMegatronLayout) {
  std::string prefix = write_three_docs(TokenDType::uint16);
  std::string expected_idx = std::string("MMIDIDX\0\0", 9) + le<uint64_t>(1) + le<uint8_t>(8) +
                             le<uint64_t>(3) + le<uint64_t>(4);          // S = 3, D = 3 + 1
  for (int32_t n : {3, 2, 5}) expected_idx += le<int32_t>(n);              // sizes
  for (int64_t p : {0, 6, 10}) expected_idx += le<int64_t>(p);             // byte pointers (2 B/token)
  for (int64_t d : {0, 1, 2, 3}) expected_idx += le<int64_t>(d);           // document_indices
  EXPECT_EQ(forma::read_file(prefix + ".idx"), expected_idx);
  std::string expected_bin;
  for (uint16_t id : {1, 2, 3, 65535, 0, 7, 8, 9, 10, 11}) expected_bin += le<uint16_t>(id);
  EXPECT_EQ(forma::read_file(prefix + ".bin"), expected_bin);
}

TEST(IndexedDataset, Int32LayoutUsesFourBytePointers) {
  std::string prefix = write_three_docs(TokenDType::int32);
  std::string idx = forma::read_file(prefix + ".idx");
  ASSERT_EQ(idx.size(), 34u + 3 * 4 + 3 * 8 + 4 * 8);
  EXPECT_EQ(static_cast<uint8_t>(idx[17]), 4);  // Megatron's code for int32
  EXPECT_EQ(idx.substr(34 + 12, 24), le<int64_t>(0) + le<int64_t>(12) + le<int64_t>(20));
  EXPECT_EQ(fs::file_size(prefix + ".bin"), 10u * 4);
}

TEST(IndexedDataset, RoundTripReturnsTheWrittenIds) {
  for (TokenDType dtype : {TokenDType::uint16, TokenDType::int32}) {
    IndexedDataset dataset(write_three_docs(dtype));
    EXPECT_EQ(dataset.dtype(), dtype);
    EXPECT_EQ(dataset.sequence_count(), 3);
    EXPECT_EQ(dataset.document_count(), 3);
    EXPECT_EQ(dataset.total_tokens(), 10);
    EXPECT_EQ(dataset.sequence(0), (std::vector<int32_t>{1, 2, 3}));
    EXPECT_EQ(dataset.sequence(1), (std::vector<int32_t>{65535, 0}));
    EXPECT_EQ(dataset.sequence(2), (std::vector<int32_t>{7, 8, 9, 10, 11}));
    int32_t middle[2];
    dataset.read(2, 1, 2, middle);
    EXPECT_EQ(middle[0], 8);
    EXPECT_EQ(middle[1], 9);
    EXPECT_THROW(dataset.read(2, 4, 2, middle), forma::Error);
    EXPECT_THROW(dataset.sequence(3), forma::Error);
  }
}

TEST(IndexedDataset, LargeIdsRoundTripInInt32) {
  std::string prefix = forma::test::scratch_dir() + "/big";
  IndexedDatasetWriter writer(prefix, TokenDType::int32);
  writer.add_document({128000, 70000, 1});
  writer.finish();
  EXPECT_EQ(IndexedDataset(prefix).sequence(0), (std::vector<int32_t>{128000, 70000, 1}));
}

TEST(IndexedDataset, Uint16WriterRefusesIdsThatDoNotFit) {
  std::string prefix = forma::test::scratch_dir() + "/small";
  {
    IndexedDatasetWriter writer(prefix, TokenDType::uint16);
    EXPECT_THROW(writer.add_document({1, 65536}), forma::Error);
    EXPECT_THROW(writer.add_document({-1}), forma::Error);
  }
  EXPECT_TRUE(fs::is_empty(forma::test::scratch_dir()));  // unfinished writer leaves nothing behind
}

TEST(IndexedDataset, ReadsMegatronDocumentsOfSeveralSequences) {
  // A dataset as preprocess_data.py --split-sentences writes it: document 0 = sequences 0 and 1.
  std::string prefix = forma::test::scratch_dir() + "/sentences";
  std::string idx = std::string("MMIDIDX\0\0", 9) + le<uint64_t>(1) + le<uint8_t>(4) + le<uint64_t>(3) +
                    le<uint64_t>(3) + le<int32_t>(2) + le<int32_t>(1) + le<int32_t>(2) + le<int64_t>(0) +
                    le<int64_t>(8) + le<int64_t>(12) + le<int64_t>(0) + le<int64_t>(2) + le<int64_t>(3);
  std::string bin = le<int32_t>(5) + le<int32_t>(6) + le<int32_t>(7) + le<int32_t>(8) + le<int32_t>(9);
  forma::write_file_atomic(prefix + ".idx", idx);
  forma::write_file_atomic(prefix + ".bin", bin);
  IndexedDataset dataset(prefix);
  EXPECT_EQ(dataset.document_count(), 2);
  EXPECT_EQ(dataset.document_begin(1), 2);
  EXPECT_EQ(dataset.sequence(1), (std::vector<int32_t>{7}));
  EXPECT_EQ(dataset.sequence(2), (std::vector<int32_t>{8, 9}));
}

TEST(IndexedDataset, TruncatedBinIsRefusedNamingIt) {
  std::string prefix = write_three_docs(TokenDType::uint16);
  fs::resize_file(prefix + ".bin", 18);  // one token short
  expect_error_naming(prefix, prefix + ".bin");
}

TEST(IndexedDataset, TruncatedIdxIsRefusedNamingIt) {
  std::string prefix = write_three_docs(TokenDType::uint16);
  for (uintmax_t size : {101u, 60u, 33u, 0u}) {
    fs::resize_file(prefix + ".idx", size);
    expect_error_naming(prefix, prefix + ".idx");
  }
}

TEST(IndexedDataset, CorruptIdxFieldsAreRefused) {
  std::string prefix = write_three_docs(TokenDType::uint16);
  const std::string good = forma::read_file(prefix + ".idx");
  auto patched = [&](size_t offset, const std::string& bytes) {
    std::string idx = good;
    idx.replace(offset, bytes.size(), bytes);
    forma::write_file_atomic(prefix + ".idx", idx);
  };
  patched(0, "XXIDIDX");                        // magic
  expect_error_naming(prefix, "magic");
  patched(9, le<uint64_t>(2));                  // version
  expect_error_naming(prefix, "version");
  patched(17, le<uint8_t>(9));                  // dtype code
  expect_error_naming(prefix, "dtype");
  patched(18, le<uint64_t>(1ULL << 60));        // absurd sequence count
  expect_error_naming(prefix, prefix + ".idx");
  patched(34 + 4, le<int32_t>(-1));             // negative length
  expect_error_naming(prefix, "negative");
  patched(34 + 12 + 16, le<int64_t>(1000));     // pointer past the end of .bin
  expect_error_naming(prefix, prefix + ".bin");
  patched(34 + 36 + 16, le<int64_t>(0));        // document_indices out of order
  expect_error_naming(prefix, "document_indices");
  patched(34 + 36 + 24, le<int64_t>(2));        // last document index is not S
  expect_error_naming(prefix, "last document index");
}

TEST(IndexedDataset, MissingFilesAreNamed) {
  std::string prefix = write_three_docs(TokenDType::uint16);
  fs::remove(prefix + ".bin");
  expect_error_naming(prefix, prefix + ".bin");
}
