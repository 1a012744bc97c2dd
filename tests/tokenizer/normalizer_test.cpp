// Unicode normalizers (tokenizer.json "NFC", "NFD", "NFKC", "NFKD"): cases whose forms are known by
// hand, then a varied text checked against Python's unicodedata (an independent implementation).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "forma/core/files.h"
#include "forma/tokenizer/hf_tokenizer.h"
#include "forma/tokenizer/unicode.h"
#include "test_paths.h"

namespace forma::tok {
namespace {

TEST(UnicodeNormalize, HandKnownForms) {
  // e + COMBINING ACUTE composes to U+00E9 and decomposes back.
  EXPECT_EQ(unicode_normalize("e\xCC\x81", NormalForm::NFC), "\xC3\xA9");
  EXPECT_EQ(unicode_normalize("\xC3\xA9", NormalForm::NFD), "e\xCC\x81");
  // Hangul jamo U+1100 U+1161 compose algorithmically to U+AC00.
  EXPECT_EQ(unicode_normalize("\xE1\x84\x80\xE1\x85\xA1", NormalForm::NFC), "\xEA\xB0\x80");
  // The ligature U+FB01 survives NFC but is "fi" under the compatibility forms.
  EXPECT_EQ(unicode_normalize("\xEF\xAC\x81", NormalForm::NFC), "\xEF\xAC\x81");
  EXPECT_EQ(unicode_normalize("\xEF\xAC\x81", NormalForm::NFKC), "fi");
  // Full-width 'Ａ' (U+FF21) -> 'A' under NFKD; ANGSTROM SIGN U+212B -> U+00C5 under NFC (a singleton).
  EXPECT_EQ(unicode_normalize("\xEF\xBC\xA1", NormalForm::NFKD), "A");
  EXPECT_EQ(unicode_normalize("\xE2\x84\xAB", NormalForm::NFC), "\xC3\x85");
  // Combining marks are reordered canonically: U+0323 (class 220) before U+0307 (class 230).
  EXPECT_EQ(unicode_normalize("q\xCC\x87\xCC\xA3", NormalForm::NFD), "q\xCC\xA3\xCC\x87");
}

TEST(UnicodeNormalize, InvalidBytesPassThroughAndSplitRuns) {
  // The stray 0xFF stays, and the combining mark after it has nothing to compose with.
  EXPECT_EQ(unicode_normalize("e\xFF\xCC\x81 e\xCC\x81", NormalForm::NFC), "e\xFF\xCC\x81 \xC3\xA9");
}

TEST(UnicodeNormalize, AgreesWithPythonUnicodedata) {
  const std::string text =
      "Ame\xCC\x81lie \xEF\xAC\x81n \xE2\x84\xAB \xEF\xBC\xA1\xEF\xBC\xA2 \xE1\x84\x80\xE1\x85\xA1 "
      "\xE3\x82\xAB\xE3\x82\x99 \xE2\x91\xA0 x\xC2\xB2 \xC3\x85ngstr\xC3\xB6m \xE2\x80\xA6 "
      "\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB \xE1\xB8\x8B\xCC\xA3 \xEF\xBE\x8A\xEF\xBE\x9F";
  const std::string dir = test::scratch_dir();
  write_file_atomic(dir + "/in.txt", text);
  for (const char* form : {"NFC", "NFD", "NFKC", "NFKD"}) {
    auto python = test::run_command(test::python() + " -c \"import sys, unicodedata; sys.stdout.write(unicodedata.normalize('" +
                                        std::string(form) + "', open(sys.argv[1], encoding='utf-8').read()))\" " +
                                        dir + "/in.txt",
                                    /*with_stderr=*/false);
    ASSERT_EQ(python.exit_code, 0);
    NormalForm f = std::string(form) == "NFC"    ? NormalForm::NFC
                   : std::string(form) == "NFD"  ? NormalForm::NFD
                   : std::string(form) == "NFKC" ? NormalForm::NFKC
                                                 : NormalForm::NFKD;
    EXPECT_EQ(unicode_normalize(text, f), python.output) << form;
  }
}

TEST(UnicodeNormalize, TokenizerJsonNormalizerApplies) {
  // Vocabulary holds only the composed U+00E9: the decomposed input must reach it through NFC.
  auto json = nlohmann::json::parse(R"({"normalizer": {"type": "NFC"},
      "model": {"type": "BPE", "vocab": {"\u00e9": 0, "e": 1, "\u0301": 2}, "merges": []}})");
  HfTokenizer tokenizer(json, nlohmann::json(), "test tokenizer.json");
  EXPECT_EQ(tokenizer.encode("e\xCC\x81"), (std::vector<int32_t>{0}));
}

}  // namespace
}  // namespace forma::tok
