#include "forma/data/sequences.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "forma/core/error.h"
#include "forma/data/blend.h"
#include "forma/data/indexed_dataset.h"
#include "forma/data/packed_sequences.h"
#include "forma/data/shuffle.h"
#include "test_paths.h"

using forma::data::DataSpec;
using forma::data::open_sequences;
using forma::data::Split;

namespace {

// Writes documents given as id lists; returns the prefix.
std::string write_docs(const std::string& name, const std::vector<std::vector<int32_t>>& docs) {
  std::string prefix = forma::test::scratch_dir() + "/" + name;
  forma::data::IndexedDatasetWriter writer(prefix, forma::data::TokenDType::uint16);
  for (const auto& doc : docs) writer.add_document(doc);
  writer.finish();
  return prefix;
}

// `count` documents; document d holds `length` copies of id 1000 + d, so every token says which
// document it came from.
std::string write_tagged_docs(const std::string& name, int count, int length, int first_id = 1000) {
  std::vector<std::vector<int32_t>> docs;
  for (int d = 0; d < count; ++d) docs.emplace_back(length, first_id + d);
  return write_docs(name, docs);
}

std::vector<int32_t> sample(const forma::data::TokenSequences& seqs, int64_t index) {
  std::vector<int32_t> out(static_cast<size_t>(seqs.seq_len() + 1));
  seqs.get(index, out.data());
  return out;
}

std::vector<std::vector<int32_t>> epoch_samples(const forma::data::TokenSequences& seqs, int64_t epoch = 0) {
  std::vector<std::vector<int32_t>> out;
  for (int64_t i = 0; i < seqs.size(); ++i) out.push_back(sample(seqs, epoch * seqs.size() + i));
  return out;
}

}  // namespace

TEST(Sequences, PackingByHand) {
  // Stream: 1 2 3 | 4 5 | 6 7 8 9 (documents already end in their EOS in real data).
  std::string prefix = write_docs("tiny", {{1, 2, 3}, {4, 5}, {6, 7, 8, 9}});
  auto dataset = std::make_shared<const forma::data::IndexedDataset>(prefix);
  forma::data::PackedSequences packed(dataset, {0, 1, 2}, /*seq_len=*/3, /*shuffle=*/false, 0);
  // (9 tokens - 1) / 3 = 2 samples of 4 tokens, overlapping by one; token 9 is left over.
  ASSERT_EQ(packed.size(), 2);
  EXPECT_EQ(sample(packed, 0), (std::vector<int32_t>{1, 2, 3, 4}));
  EXPECT_EQ(sample(packed, 1), (std::vector<int32_t>{4, 5, 6, 7}));
  EXPECT_EQ(sample(packed, 2), sample(packed, 0));  // the next epoch, unshuffled

  forma::data::PackedSequences pairs(dataset, {0, 2}, /*seq_len=*/2, false, 0);  // stream 1 2 3 6 7 8 9
  ASSERT_EQ(pairs.size(), 3);
  EXPECT_EQ(sample(pairs, 0), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(sample(pairs, 1), (std::vector<int32_t>{3, 6, 7}));
  EXPECT_EQ(sample(pairs, 2), (std::vector<int32_t>{7, 8, 9}));
}

TEST(Sequences, TrainOrderIsAPermutationOfThePackedSamples) {
  std::string prefix = write_docs("tiny", {{1, 2, 3}, {4, 5}, {6, 7, 8, 9}, {10, 11, 12}});
  auto train = open_sequences(DataSpec{{prefix}, {}, 2}, Split::train);
  ASSERT_EQ(train->size(), 5);  // 12 tokens: (12 - 1) / 2
  auto got = epoch_samples(*train);
  std::vector<std::vector<int32_t>> by_hand = {{1, 2, 3}, {3, 4, 5}, {5, 6, 7}, {7, 8, 9}, {9, 10, 11}};
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, by_hand);
}

TEST(Sequences, ShuffleIsDeterministicPerSeedAndEpoch) {
  std::string prefix = write_tagged_docs("tagged", 50, 7);
  DataSpec spec{{prefix}, {}, 4};
  spec.seed = 7;
  auto a = open_sequences(spec, Split::train);
  auto b = open_sequences(spec, Split::train);
  spec.seed = 8;
  auto c = open_sequences(spec, Split::train);
  ASSERT_EQ(a->size(), (50 * 7 - 1) / 4);
  EXPECT_EQ(epoch_samples(*a), epoch_samples(*b));
  EXPECT_NE(epoch_samples(*a), epoch_samples(*c));
  EXPECT_NE(epoch_samples(*a, 0), epoch_samples(*a, 1));  // a new permutation each epoch
  auto sorted = [](auto v) { std::sort(v.begin(), v.end()); return v; };
  EXPECT_EQ(sorted(epoch_samples(*a, 0)), sorted(epoch_samples(*a, 1)));
  EXPECT_EQ(sorted(epoch_samples(*a, 0)), sorted(epoch_samples(*c, 0)));
  EXPECT_EQ(sample(*a, 3 * a->size() + 5), sample(*b, 3 * a->size() + 5));  // any epoch, any reader
}

TEST(Sequences, PermutationIsUniformAndPortable) {
  // uniform_below draws from the raw mt19937_64 stream, which the C++ standard fixes: the 10000th
  // output of a default-seeded engine is 9981545732273789042 (N4659 [rand.predef]).
  std::mt19937_64 engine;
  engine.discard(9999);
  EXPECT_EQ(engine(), 9981545732273789042ULL);
  // With n a power of two no draw is rejected, so the result is the raw output modulo n.
  std::mt19937_64 rng(42), raw(42);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(forma::data::uniform_below(rng, 1024), raw() % 1024);
  // Every position is equally likely: count where element 0 lands over many seeds.
  std::vector<int> where(5, 0);
  for (uint64_t seed = 0; seed < 5000; ++seed) {
    auto order = forma::data::shuffled_range(5, seed);
    where[std::find(order.begin(), order.end(), 0) - order.begin()]++;
  }
  for (int count : where) EXPECT_NEAR(count, 1000, 120);
}

TEST(Sequences, ValidSplitIsDisjointAndCoversAllDocuments) {
  for (int documents : {10, 37, 200}) {
    for (double fraction : {0.01, 0.1, 0.5}) {
      auto split = forma::data::split_documents(documents, fraction, 99);
      std::set<int64_t> train(split.train.begin(), split.train.end());
      std::set<int64_t> valid(split.valid.begin(), split.valid.end());
      EXPECT_EQ(train.size() + valid.size(), static_cast<size_t>(documents));
      for (int64_t d : valid) EXPECT_EQ(train.count(d), 0u);
      for (int64_t d = 0; d < documents; ++d) EXPECT_TRUE(train.count(d) + valid.count(d) == 1);
      int64_t expected = std::max<int64_t>(1, std::llround(fraction * documents));
      EXPECT_EQ(static_cast<int64_t>(valid.size()), expected);
    }
  }
  EXPECT_EQ(forma::data::split_documents(10, 0.3, 1).valid, forma::data::split_documents(10, 0.3, 1).valid);
  EXPECT_NE(forma::data::split_documents(100, 0.3, 1).valid, forma::data::split_documents(100, 0.3, 2).valid);
  EXPECT_TRUE(forma::data::split_documents(10, 0.0, 1).valid.empty());
  EXPECT_EQ(forma::data::split_documents(2, 0.9, 1).train.size(), 1u);  // train never empty
}

TEST(Sequences, TrainAndValidSamplesComeFromTheirOwnDocuments) {
  std::string prefix = write_tagged_docs("tagged", 40, 9);
  DataSpec spec{{prefix}, {}, 8};
  spec.valid_fraction = 0.25;
  auto split = forma::data::split_documents(40, 0.25, spec.seed);
  std::set<int32_t> valid_ids, train_ids;
  for (int64_t d : split.valid) valid_ids.insert(static_cast<int32_t>(1000 + d));
  for (int64_t d : split.train) train_ids.insert(static_cast<int32_t>(1000 + d));

  std::set<int32_t> seen_valid, seen_train;
  auto valid = open_sequences(spec, Split::valid);
  EXPECT_EQ(valid->size(), (10 * 9 - 1) / 8);
  for (auto& s : epoch_samples(*valid)) seen_valid.insert(s.begin(), s.end());
  auto train = open_sequences(spec, Split::train);
  EXPECT_EQ(train->size(), (30 * 9 - 1) / 8);
  for (auto& s : epoch_samples(*train)) seen_train.insert(s.begin(), s.end());
  EXPECT_EQ(seen_valid, valid_ids);  // all of them: only the last token of the stream is unused
  for (int32_t id : seen_train) EXPECT_EQ(train_ids.count(id), 1u) << id;

  spec.seq_len = 3;  // the split does not move with seq_len
  std::set<int32_t> seen_short;
  for (auto& s : epoch_samples(*open_sequences(spec, Split::valid))) seen_short.insert(s.begin(), s.end());
  EXPECT_EQ(seen_short, valid_ids);
}

TEST(Sequences, BlendSharesFollowWeightsWithinOneSample) {
  std::vector<double> weights = {0.5, 0.3, 0.2};
  auto index = forma::data::build_blend_index(weights, 1000);
  std::vector<int64_t> counts(3, 0);
  for (size_t i = 0; i < index.source.size(); ++i) {
    EXPECT_EQ(index.source_index[i], counts[index.source[i]]);  // each source read in order
    counts[index.source[i]]++;
    for (size_t k = 0; k < 3; ++k)
      EXPECT_LE(std::abs(static_cast<double>(counts[k]) - weights[k] * static_cast<double>(i + 1)), 1.0)
          << "after " << i + 1 << " samples, source " << k;
  }
  EXPECT_EQ(index.counts, (std::vector<int64_t>{500, 300, 200}));
  auto uneven = forma::data::build_blend_index({3.0, 1.0}, 7);  // weights normalised to 0.75, 0.25
  EXPECT_EQ(uneven.counts, (std::vector<int64_t>{5, 2}));
}

TEST(Sequences, BlendedDatasetsDrawByWeight) {
  std::string a = write_tagged_docs("a", 30, 10, 1000);  // ids 1000..1029
  std::vector<std::vector<int32_t>> b_docs(5);              // ids 2000..2049, all distinct
  for (int32_t id = 2000; id < 2050; ++id) b_docs[static_cast<size_t>((id - 2000) / 10)].push_back(id);
  std::string b = write_docs("b", b_docs);
  DataSpec spec{{a, b}, {1.0, 3.0}, 4};
  auto blend = open_sequences(spec, Split::train);
  const int64_t size_a = (300 - 1) / 4, size_b = (50 - 1) / 4;
  ASSERT_EQ(blend->size(), size_a + size_b);
  int64_t from_b = 0;
  for (int64_t i = 0; i < 3 * blend->size(); ++i) {  // three blend epochs
    auto s = sample(*blend, i);
    bool in_b = s[0] >= 2000;
    for (int32_t id : s) EXPECT_EQ(id >= 2000, in_b) << "sample " << i << " mixes datasets";
    from_b += in_b;
    EXPECT_LE(std::abs(static_cast<double>(from_b) - 0.75 * static_cast<double>(i + 1)), 1.0) << i;
  }
  // Dataset b has 12 samples but supplies ~194: it runs through several of its own epochs, each
  // a full permutation, so its samples appear equally often (within one).
  std::map<std::vector<int32_t>, int> seen;
  for (int64_t i = 0; i < 3 * blend->size(); ++i) {
    auto s = sample(*blend, i);
    if (s[0] >= 2000) seen[s]++;
  }
  EXPECT_EQ(static_cast<int64_t>(seen.size()), size_b);
  auto [fewest, most] = std::minmax_element(seen.begin(), seen.end(),
                                            [](auto& x, auto& y) { return x.second < y.second; });
  EXPECT_LE(most->second - fewest->second, 1);
  // Random access far ahead gives what reading in order gives.
  auto fresh = open_sequences(spec, Split::train);
  EXPECT_EQ(sample(*fresh, 7 * blend->size() + 3), sample(*blend, 7 * blend->size() + 3));

  auto again = open_sequences(spec, Split::train);
  for (int64_t i = 0; i < blend->size(); ++i) EXPECT_EQ(sample(*blend, i), sample(*again, i));
}

TEST(Sequences, SpecErrorsNameTheProblem) {
  std::string prefix = write_tagged_docs("tagged", 4, 3);
  auto message = [](const DataSpec& spec, Split split) -> std::string {
    try {
      open_sequences(spec, split);
    } catch (const forma::Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(message(DataSpec{{prefix}, {}, 4}, Split::valid).find("valid_fraction"), std::string::npos);
  EXPECT_NE(message(DataSpec{{prefix}, {1, 2}, 4}, Split::train).find("weights"), std::string::npos);
  EXPECT_NE(message(DataSpec{{prefix}, {}, 0}, Split::train).find("seq_len"), std::string::npos);
  EXPECT_NE(message(DataSpec{{prefix}, {}, 12}, Split::train).find(prefix), std::string::npos);
  EXPECT_NE(message(DataSpec{{prefix, prefix}, {1, -1}, 2}, Split::train).find("weight 1"), std::string::npos);
  EXPECT_NE(message(DataSpec{{prefix + "x"}, {}, 2}, Split::train).find(prefix + "x.idx"), std::string::npos);
  DataSpec bad_fraction{{prefix}, {}, 2};
  bad_fraction.valid_fraction = 1.0;
  EXPECT_NE(message(bad_fraction, Split::train).find("valid_fraction"), std::string::npos);
}
