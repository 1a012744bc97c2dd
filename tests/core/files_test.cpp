#include "forma/core/files.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "forma/core/error.h"
#include "test_paths.h"

TEST(Files, AtomicWriteThenMapReadsSameBytes) {
  std::string path = forma::test::scratch_dir() + "/a.bin";
  std::string bytes("abc\0def", 7);
  forma::write_file_atomic(path, bytes);
  forma::MappedFile map(path);
  EXPECT_EQ(map.view(), bytes);
  EXPECT_EQ(forma::read_file(path), bytes);
  // no temp file is left behind
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(forma::test::scratch_dir())) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST(Files, MissingFileErrorNamesIt) {
  try {
    forma::MappedFile map("/nonexistent/forma.bin");
    FAIL();
  } catch (const forma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/forma.bin"), std::string::npos);
  }
}
