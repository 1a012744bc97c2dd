#include "forma/core/files.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <vector>

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

// Resident pages of this process (/proc/self/statm, second field).
static long resident_pages() {
  long size = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f) {
    if (std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident;
}

TEST(Files, ReleasedPagesLeaveResidentMemoryAndReadBackTheSame) {
  std::string path = forma::test::scratch_dir() + "/big.bin";
  std::string bytes(64 << 20, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 2654435761u >> 24);
  forma::write_file_atomic(path, bytes);
  forma::MappedFile map(path);
  auto checksum = [&] {
    uint64_t sum = 0;
    for (size_t i = 0; i < map.size(); i += 64) sum += map.data()[i];
    return sum;
  };
  const uint64_t before = checksum();  // touches every page
  const long touched = resident_pages();
  map.release_pages(map.data(), map.size());
  const long released = resident_pages();
  const long page = sysconf(_SC_PAGESIZE);
  EXPECT_GT(touched - released, (60l << 20) / page) << "pages still resident";
  EXPECT_EQ(checksum(), before);  // read again from the file
  EXPECT_EQ(map.view(), bytes);

  // Memory that is not part of the map is never touched (MADV_DONTNEED would zero it).
  std::vector<char> heap(1 << 20, 7);
  map.release_pages(heap.data(), heap.size());
  map.release_pages(map.data() + map.size() - 10, 1000);  // runs past the end: clipped
  EXPECT_EQ(std::count(heap.begin(), heap.end(), 7), static_cast<long>(heap.size()));
}
