// test_html.cpp - the HTML report: escaping, tables, inline figures, atomic write, and a headless-Chromium
// rendering of a full study report (skipped when /usr/bin/chromium is absent).
#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "nfscale/report/figures.h"
#include "nfscale/report/html.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"

namespace fs = std::filesystem;
using namespace nfscale::report;

namespace {

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t i = s.find(what); i != std::string::npos; i = s.find(what, i + 1)) ++n;
  return n;
}

// A report like the study writes, from synthetic power-law data.
HtmlReport study_report(const std::string& png_name) {
  std::vector<NamedCurve> loss, lr, ft;
  const char* models[] = {"F0", "F1", "F3"};
  for (int m = 0; m < 3; ++m) {
    NamedCurve l{models[m], {}}, r{models[m], {}}, f{models[m], {}};
    const double macs = 1e9 * std::pow(2.0, m);
    for (double e : {0.25, 0.5, 1.0, 2.0, 4.0, 8.0}) {
      const double c = 6.0 * macs * 1.2e6 * e;
      l.points.push_back({c, 2.0 + 40.0 * std::pow(c, -0.1) * (1.0 + 0.15 * (2 - m)) + 0.02 * m});
      r.points.push_back({e, 1.6 / std::pow(2.0, std::floor((m + 1) * std::log2(e + 1) / 2))});
      f.points.push_back({c, 0.05 + 3.0 * std::pow(c, -0.08)});
    }
    loss.push_back(l);
    lr.push_back(r);
    ft.push_back(f);
  }
  HtmlReport rep("nfscale scaling study <demo>");
  rep.heading("Summary");
  rep.paragraph("Held-out loss falls as a power law of compute; R&D notes: \"a < b\".");
  rep.table({"model", "epochs", "lr", "held-out loss"},
            {{"F0", "1", "1.6", "2.71"}, {"F1", "2", "0.8", "2.55"}, {"F3 <big>", "8", "0.4", "2.40"}},
            "Compute-optimal trials");
  rep.heading("Figures");
  rep.figure(to_svg(loss_vs_compute_figure(loss, PowerLawLine{4.34, -0.0101, 7e15, 2e17})),
             "Held-out loss vs compute (cf. paper Fig. 2)", png_name);
  rep.figure(to_svg(optimal_lr_figure(lr)), "Optimal learning rate vs epoch budget (cf. Fig. 3)");
  rep.figure(to_svg(finetune_error_figure(ft, {{"ViT (reference)", {{1e17, 0.12}}}})),
             "Fine-tuned top-1 error vs compute (cf. Fig. 1)");
  rep.preformatted("nfscale study run --db study.db");
  return rep;
}

TEST(Html, EscapesTextAndContainsTablesAndFigures) {
  std::string html = study_report("loss.png").html();
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("<title>nfscale scaling study &lt;demo&gt;</title>"), std::string::npos);
  EXPECT_NE(html.find("R&amp;D notes: &quot;a &lt; b&quot;."), std::string::npos);
  EXPECT_NE(html.find("<td>F3 &lt;big&gt;</td>"), std::string::npos);
  EXPECT_EQ(html.find("<big>"), std::string::npos);
  EXPECT_NE(html.find("<th>held-out loss</th>"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"num\">2.71</td>"), std::string::npos);
  EXPECT_NE(html.find("<caption>Compute-optimal trials</caption>"), std::string::npos);
  EXPECT_EQ(count(html, "<tr>"), 4u);  // header + 3 rows
  EXPECT_EQ(count(html, "<svg"), 3u);
  EXPECT_EQ(count(html, "</svg>"), 3u);
  EXPECT_NE(html.find("Figure 3. Fine-tuned"), std::string::npos);
  EXPECT_NE(html.find("<a href=\"loss.png\">PNG</a>"), std::string::npos);
  EXPECT_EQ(html_escape("<&>\"'"), "&lt;&amp;&gt;&quot;&#39;");
}

TEST(Html, RejectsRaggedTablesAndNonSvgFigures) {
  HtmlReport rep("t");
  try {
    rep.table({"a", "b"}, {{"1", "2"}, {"3"}}, "runs");
    FAIL() << "ragged table accepted";
  } catch (const nfscale::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("row 2 has 1 cells"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("runs"), std::string::npos) << e.what();
  }
  EXPECT_THROW(rep.figure("<p>not svg</p>", "x"), nfscale::UserError);
}

TEST(Html, WriteIsAtomicAndReadable) {
  const fs::path dir = fs::temp_directory_path() / ("nfscale_html_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  HtmlReport rep("written");
  rep.paragraph("hello");
  rep.write((dir / "sub" / "report.html").string());
  EXPECT_EQ(nfscale::read_file((dir / "sub" / "report.html").string()), rep.html());
  size_t entries = 0;
  for (auto& e : fs::directory_iterator(dir / "sub")) entries += e.is_regular_file();
  EXPECT_EQ(entries, 1u);  // no temp file left behind
  fs::remove_all(dir);
}

// Renders the full report headless and checks the screenshot is not blank: many non-white pixels and several
// distinct colours (the plot palette). Artifacts stay in <build>/test-artifacts/report for a human to look at.
TEST(Html, RendersInChromium) {
  const char* chromium = "/usr/bin/chromium";
  if (access(chromium, X_OK) != 0) GTEST_SKIP() << "no " << chromium;
  const fs::path dir = fs::path(NFSCALE_BINARY_DIR) / "test-artifacts" / "report";
  fs::remove_all(dir);
  fs::create_directories(dir);
  write_png(loss_vs_compute_figure({{"F0", {{1e15, 3.0}, {4e15, 2.7}, {1.6e16, 2.5}}},
                                    {"F1", {{3e15, 2.8}, {1.2e16, 2.5}, {4.8e16, 2.3}}}},
                                   PowerLawLine{20.0, -0.055, 1e15, 4.8e16}),
            (dir / "loss.png").string());
  study_report("loss.png").write((dir / "report.html").string());
  const fs::path shot = dir / "screenshot.png";
  const fs::path profile = dir / "chromium-profile";
  auto quoted = [](const fs::path& p) { return "'" + p.string() + "'"; };
  const std::string cmd = "timeout 120 " + std::string(chromium) +
                          " --headless --no-sandbox --disable-gpu --disable-background-networking"
                          " --disable-component-update --disable-sync --no-first-run --hide-scrollbars"
                          " --user-data-dir=" + quoted(profile) + " --screenshot=" + quoted(shot) +
                          " --window-size=1200,1600 " + quoted("file://" + (dir / "report.html").string()) +
                          " > " + quoted(dir / "chromium.log") + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "chromium failed; see " << (dir / "chromium.log");
  ASSERT_TRUE(fs::exists(shot)) << nfscale::read_file((dir / "chromium.log").string());
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  ASSERT_TRUE(png_image_begin_read_from_file(&img, shot.c_str())) << img.message;
  img.format = PNG_FORMAT_RGB;
  std::vector<uint8_t> rgb(PNG_IMAGE_SIZE(img));
  ASSERT_TRUE(png_image_finish_read(&img, nullptr, rgb.data(), 0, nullptr)) << img.message;
  EXPECT_EQ(img.width, 1200u);
  EXPECT_EQ(img.height, 1600u);
  size_t non_white = 0;
  std::set<uint32_t> colours;
  for (size_t i = 0; i < rgb.size(); i += 3) {
    if (rgb[i] < 240 || rgb[i + 1] < 240 || rgb[i + 2] < 240) ++non_white;
    colours.insert((rgb[i] << 16) | (rgb[i + 1] << 8) | rgb[i + 2]);
  }
  const size_t pixels = rgb.size() / 3;
  EXPECT_GT(non_white, pixels / 100) << "screenshot is (nearly) blank";
  EXPECT_GT(colours.size(), 50u);
  fs::remove_all(profile);
}

}  // namespace
