#include "forma/core/progress.h"

#include <gtest/gtest.h>

TEST(FormatDuration, HandComputed) {
  EXPECT_EQ(forma::format_duration(12.2), "12s");
  EXPECT_EQ(forma::format_duration(185), "3m05s");
  EXPECT_EQ(forma::format_duration(3725), "1h02m");
  EXPECT_EQ(forma::format_duration(-1), "?");
}
