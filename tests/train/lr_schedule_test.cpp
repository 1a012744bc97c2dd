// Learning-rate schedules against values computed by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "forma/train/lr_schedule.h"

namespace forma::train {
namespace {

ScheduleConfig config(const std::string& type, int64_t warmup, double min_ratio = 0.1, double decay = 0.2) {
  ScheduleConfig c;
  c.type = type, c.warmup_steps = warmup, c.min_lr_ratio = min_ratio, c.decay_fraction = decay;
  return c;
}

TEST(LrSchedule, WarmupIsLinearFromZero) {
  LrSchedule s(config("cosine", 10), 1e-3, 100);
  EXPECT_DOUBLE_EQ(s.at(1), 1e-4);
  EXPECT_DOUBLE_EQ(s.at(5), 5e-4);
  EXPECT_DOUBLE_EQ(s.at(10), 1e-3);
}

TEST(LrSchedule, Constant) {
  LrSchedule s(config("constant", 4), 2e-3, 100);
  EXPECT_DOUBLE_EQ(s.at(2), 1e-3);
  EXPECT_DOUBLE_EQ(s.at(5), 2e-3);
  EXPECT_DOUBLE_EQ(s.at(100), 2e-3);
}

TEST(LrSchedule, LinearDecaysToMin) {
  // warmup 10, max 110: step 60 is half way from 1.0 to 0.1.
  LrSchedule s(config("linear", 10), 1.0, 110);
  EXPECT_DOUBLE_EQ(s.at(10), 1.0);
  EXPECT_NEAR(s.at(60), 0.55, 1e-12);
  EXPECT_NEAR(s.at(110), 0.1, 1e-12);
  EXPECT_NEAR(s.at(200), 0.1, 1e-12);  // past the end: stays at the floor
}

TEST(LrSchedule, CosineByHand) {
  LrSchedule s(config("cosine", 0, 0.0), 1.0, 100);
  EXPECT_NEAR(s.at(50), 0.5, 1e-12);                                      // cos(pi/2) = 0
  EXPECT_NEAR(s.at(25), 0.5 * (1 + std::cos(M_PI * 0.25)), 1e-12);       // 0.853553...
  EXPECT_NEAR(s.at(25), 0.8535533905932737, 1e-12);
  EXPECT_NEAR(s.at(100), 0.0, 1e-12);
  LrSchedule with_min(config("cosine", 0, 0.1), 1.0, 100);
  EXPECT_NEAR(with_min.at(50), 0.55, 1e-12);  // 0.1 + 0.9 * 0.5
}

TEST(LrSchedule, WarmupStableDecay) {
  // max 100, decay_fraction 0.2: stable through step 80, then linear to 0.1 at step 100.
  LrSchedule s(config("wsd", 10, 0.1, 0.2), 1.0, 100);
  EXPECT_DOUBLE_EQ(s.at(5), 0.5);
  EXPECT_DOUBLE_EQ(s.at(50), 1.0);
  EXPECT_DOUBLE_EQ(s.at(80), 1.0);
  EXPECT_NEAR(s.at(90), 0.55, 1e-12);
  EXPECT_NEAR(s.at(100), 0.1, 1e-12);
}

}  // namespace
}  // namespace forma::train
