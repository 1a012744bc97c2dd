// The engine's bookkeeping: a thousand randomized requests with cancellations (before admission,
// mid-prefill, mid-decode) over a cache small enough to preempt and to evict cached prefixes
// leave no block behind and finish every request exactly once; cancel and shutdown end requests
// with kCancelled; run() serves from another thread and returns after shutdown; bad requests are
// refused with an error naming them.
#include "forma/serve/engine.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "engine_harness.h"
#include "forma/core/error.h"
#include "forma/model/hf_io.h"
#include "test_paths.h"

namespace forma::serve {
namespace {

using namespace test_engine;

TEST(EngineLeaks, ThousandRandomRequestsWithCancellationsLeaveNoBlock) {
  CausalLM model = load_pretrained(test::fixture("hf-tiny/llama"));
  // Thousands of tiny forwards: one intra-op thread, so that idle OpenMP workers spinning between
  // ops (libgomp's default) do not take the cores on a busy machine. Restored at the end.
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  struct Restore {
    int n;
    ~Restore() { torch::set_num_threads(n); }
  } restore{threads};
  EngineOptions options;
  options.max_batch = 8;
  options.block_size = 4;
  options.kv_cache_tokens = 64;
  options.prefill_chunk = 6;
  options.max_queue = 1000;
  Engine engine(model, nullptr, options);
  std::mt19937_64 rng(2024);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  // A few shared prefixes so that requests hit (and evict) cached blocks.
  std::vector<std::vector<int32_t>> prefixes;
  for (int p = 0; p < 4; ++p) prefixes.push_back(random_ids(8, 320, 500 + p));

  const int total = 1000;
  std::vector<int> finishes(total, 0);
  std::vector<FinishReason> reasons(total);
  std::vector<uint64_t> ids(total);
  std::vector<int> token_counts(total, 0);
  int submitted = 0, finished = 0, cancels = 0;
  int64_t most_used = 0;
  for (int step = 0; finished < total && step < 200000; ++step) {
    for (int k = uniform(0, 3); k > 0 && submitted < total; --k) {
      const int i = submitted++;
      std::vector<int32_t> prompt;
      if (uniform(0, 1)) prompt = prefixes[uniform(0, 3)];
      auto tail = random_ids(uniform(1, 6), 320, 9000 + i);
      prompt.insert(prompt.end(), tail.begin(), tail.end());
      infer::GenerationConfig config = greedy(uniform(1, 6));
      if (uniform(0, 2) == 0) {
        config.sampling.temperature = 1.0;
        config.seed = i;
      }
      RequestCallbacks callbacks;
      callbacks.on_token = [&, i](const TokenEvent&) { ++token_counts[i]; };
      callbacks.on_finish = [&, i](const FinishedEvent& e) {
        ++finishes[i];
        reasons[i] = e.reason;
        ++finished;
      };
      ids[i] = engine.submit(request_of(prompt, config), callbacks);
    }
    if (submitted > 0 && uniform(0, 9) == 0) {
      engine.cancel(ids[uniform(0, submitted - 1)]);  // often one already finished: ignored
      ++cancels;
    }
    engine.step();
    most_used = std::max(most_used, engine.stats().kv_blocks_used);
  }
  ASSERT_EQ(finished, total);
  int cancelled = 0;
  for (int i = 0; i < total; ++i) {
    EXPECT_EQ(finishes[i], 1) << "request " << i;
    cancelled += reasons[i] == FinishReason::kCancelled ? 1 : 0;
  }
  EngineStats stats = engine.stats();
  EXPECT_GT(cancelled, 0);
  EXPECT_GT(stats.preemptions, 0);
  EXPECT_GT(stats.prefix_cache_hit_tokens, 0);
  EXPECT_EQ(most_used, stats.kv_blocks_total) << "the cache was never full: no pressure was tested";
  EXPECT_EQ(stats.kv_blocks_used, 0);
  EXPECT_EQ(stats.running, 0);
  EXPECT_EQ(stats.waiting, 0);
  // Every block is still usable: a prompt filling the whole cache is served.
  auto full = serve(engine, {request_of(random_ids(63, 320, 1), greedy(1))}).front();
  ASSERT_TRUE(full.finished);
  EXPECT_EQ(full.finished->result.ids.size(), 1u);
}

TEST(EngineCancel, CancelMidDecodeFreesBlocksAndReportsCancelled) {
  CausalLM model = load_pretrained(test::fixture("hf-tiny/llama"));
  EngineOptions options;
  options.block_size = 4;
  options.prefix_caching = false;
  Engine engine(model, nullptr, options);
  std::vector<int32_t> prompt = random_ids(10, 320, 3);
  int tokens = 0;
  std::optional<FinishedEvent> done;
  uint64_t id = engine.submit(request_of(prompt, greedy(40)),
                              {[&](const TokenEvent&) { ++tokens; }, [&](const FinishedEvent& e) { done = e; }});
  while (tokens < 3) engine.step();
  EXPECT_GT(engine.stats().kv_blocks_used, 0);
  engine.cancel(id);
  engine.step();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->reason, FinishReason::kCancelled);
  EXPECT_EQ(done->result.ids.size(), 3u);
  EXPECT_EQ(engine.stats().kv_blocks_used, 0);
  engine.cancel(id);  // finished: ignored
  engine.cancel(12345);
  EXPECT_FALSE(engine.step());
}

TEST(EngineRun, ServesFromAnotherThreadAndShutdownCancelsWhatIsLeft) {
  CausalLM model = load_pretrained(test::fixture("hf-tiny/llama"));
  Engine engine(model, nullptr, {});
  std::thread loop([&] { engine.run(); });
  // A short request completes.
  std::promise<FinishedEvent> first;
  engine.submit(request_of({4, 5, 6}, greedy(3)), {nullptr, [&](const FinishedEvent& e) { first.set_value(e); }});
  FinishedEvent a = first.get_future().get();
  EXPECT_EQ(a.reason, FinishReason::kLength);
  EXPECT_EQ(a.result.ids, infer::generate(model, {4, 5, 6}, greedy(3)).ids);
  // A long one is held at its first token until shutdown has begun with no grace: then cancelled.
  std::promise<void> shutdown_begun, first_token;
  auto begun = shutdown_begun.get_future().share();
  std::promise<FinishedEvent> second;
  bool once = false;
  engine.submit(request_of({7, 8, 9}, greedy(50)),
                {[&](const TokenEvent&) {
                   if (once) return;
                   once = true;
                   first_token.set_value();
                   begun.wait();
                 },
                 [&](const FinishedEvent& e) { second.set_value(e); }});
  first_token.get_future().wait();
  engine.begin_shutdown(0);
  shutdown_begun.set_value();
  FinishedEvent b = second.get_future().get();
  EXPECT_EQ(b.reason, FinishReason::kCancelled);
  EXPECT_EQ(b.result.ids.size(), 1u);
  loop.join();
  EXPECT_THROW(engine.submit(request_of({1}, greedy(1)), {}), Error);
}

// A request taken off the incoming list mid-step still counts as waiting: a submit() made while
// the step runs (here from a token callback, as an HTTP thread would) finds the queue full.
TEST(EngineSubmit, ArrivalsTakenByARunningStepStillFillTheQueue) {
  CausalLM model = load_pretrained(test::fixture("hf-tiny/llama"));
  EngineOptions options;
  options.max_batch = 1;
  options.max_queue = 1;
  options.kv_cache_tokens = 64;
  Engine engine(model, nullptr, options);
  bool second_submitted = false;
  int refused = 0, accepted = 0;
  RequestCallbacks callbacks;
  callbacks.on_token = [&](const TokenEvent&) {
    if (!second_submitted) return;
    try {
      engine.submit(request_of({3}, greedy(1)), {});
      ++accepted;
    } catch (const QueueFull&) {
      ++refused;
    }
  };
  engine.submit(request_of({1, 2}, greedy(4)), callbacks);
  ASSERT_TRUE(engine.step());  // the first request runs (max_batch 1)
  engine.submit(request_of({2}, greedy(1)), {});  // the one waiting slot
  second_submitted = true;
  engine.step();  // takes the second off `incoming`; the first decodes and its callback submits
  EXPECT_EQ(accepted, 0);
  EXPECT_GE(refused, 1);
  EXPECT_EQ(engine.stats().waiting, 1);
}

TEST(EngineSubmit, BadRequestsAreRefusedNamingThem) {
  CausalLM model = load_pretrained(test::fixture("hf-tiny/llama"));
  EngineOptions options;
  options.kv_cache_tokens = 32;
  options.max_queue = 2;
  Engine engine(model, nullptr, options);
  auto error_for = [&](EngineRequest request) {
    request.label = "req-7";
    return test::error_of([&] { engine.submit(request, {}); });
  };
  EXPECT_NE(error_for(request_of({}, greedy(3))).find("req-7"), std::string::npos);
  EXPECT_NE(error_for(request_of({}, greedy(3))).find("no tokens"), std::string::npos);
  EXPECT_NE(error_for(request_of({1, 320}, greedy(3))).find("320"), std::string::npos);
  EXPECT_NE(error_for(request_of(random_ids(40, 320, 1), greedy(3))).find("KV cache"), std::string::npos);
  EXPECT_NE(error_for(request_of(random_ids(64, 320, 1), greedy(3))).find("req-7"), std::string::npos);
  auto no_echo = request_of({1, 2}, greedy(3));
  no_echo.config.max_new_tokens = 0;
  EXPECT_NE(error_for(no_echo).find("echo"), std::string::npos);
  auto bad_temperature = request_of({1, 2}, greedy(3));
  bad_temperature.config.sampling.temperature = -1;
  EXPECT_NE(error_for(bad_temperature).find("temperature"), std::string::npos);
  engine.submit(request_of({1}, greedy(1)), {});
  engine.submit(request_of({2}, greedy(1)), {});
  EXPECT_THROW(engine.submit(request_of({3}, greedy(1)), {}), QueueFull);
  EXPECT_EQ(engine.stats().waiting, 2);
  EXPECT_NE(test::error_of([&] { Engine bad(model, nullptr, EngineOptions{.block_size = 0}); }).find("block_size"),
            std::string::npos);
}

}  // namespace
}  // namespace forma::serve
