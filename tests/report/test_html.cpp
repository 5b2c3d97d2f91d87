// test_html.cpp - the HTML report: escaping, tables, inline figures with hover titles, atomic write, and a
// headless-Chromium rendering of a full study report (required in CI: CI=true fails without /usr/bin/chromium).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "nfscale/report/figures.h"
#include "nfscale/report/html.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"
#include "report_test_util.h"

namespace fs = std::filesystem;
using namespace nfscale::report;
using namespace nfscale::report::testing;

namespace {

// The figures a study writes, from synthetic power-law data with tooltips, seed error bars and a fit band.
struct DemoFigures {
  Plot loss, lr, slope, residual, finetune;
};

DemoFigures demo_figures() {
  std::vector<NamedCurve> loss, lr, ft;
  std::vector<LrSlopeCurve> slopes;
  const char* models[] = {"F0", "F1", "F3"};
  const double a = 9.0, b = -0.08;
  for (int m = 0; m < 3; ++m) {
    NamedCurve l{models[m], {}}, r{models[m], {}}, f{models[m], {}};
    const double macs = 1e9 * std::pow(2.0, m);
    for (double e : {0.25, 0.5, 1.0, 2.0, 4.0, 8.0}) {
      const double c = 6.0 * macs * 1.2e6 * e;
      const double y = a * std::pow(c, b) * (1.0 + 0.04 * std::pow(std::log(e / (0.5 * (m + 1))), 2));
      const double lr_opt = 1.6 * std::pow(e, -0.3 - 0.1 * m);
      l.points.push_back({c, y, 0.99 * y, 1.01 * y, trial_tooltip(models[m], e, lr_opt, y, c)});
      r.points.push_back({e, lr_opt});
      f.points.push_back({c, 0.05 + 3.0 * std::pow(c, -0.08)});
    }
    slopes.push_back({models[m], r.points, PowerLawLine{1.6, -0.3 - 0.1 * m, 0.25, 8.0, "", {}}});
    loss.push_back(l);
    lr.push_back(r);
    ft.push_back(f);
  }
  PowerLawLine fit{a, b, 1.5e15, 1.2e17, "frontier fit", {}};
  for (double x = 1.5e15; x <= 1.2e17 * 1.01; x *= 1.5)
    fit.interval.push_back({x, a * std::pow(x, b) * (0.99 - 0.002 * std::log(x / 1.5e15)),
                            a * std::pow(x, b) * (1.01 + 0.002 * std::log(x / 1.5e15))});
  return {loss_vs_compute_figure(loss, fit, "training FLOPs"), optimal_lr_figure(lr), lr_slope_figure(slopes),
          residual_figure(loss, fit, "training FLOPs"),
          finetune_error_figure(ft, {{"ViT (reference)", {{1e17, 0.12}}}})};
}

HtmlReport study_report(const std::string& png_name, const std::string& pdf_name = "") {
  const DemoFigures f = demo_figures();
  HtmlReport rep("nfscale scaling study <demo>");
  rep.heading("Summary");
  rep.paragraph("Held-out loss falls as a power law of compute; R&D notes: \"a < b\".");
  rep.table({"model", "epochs", "lr", "held-out loss"},
            {{"F0", "1", "1.6", "2.71"}, {"F1", "2", "0.8", "2.55"}, {"F3 <big>", "8", "0.4", "2.40"}},
            "Compute-optimal trials");
  rep.heading("Figures");
  rep.figure(to_svg(f.loss), "Held-out loss vs compute (cf. paper Fig. 2)", png_name, pdf_name);
  rep.figure(to_svg(f.residual), "Residuals of the frontier fit");
  rep.figure(to_svg(f.lr), "Optimal learning rate vs epoch budget (cf. Fig. 3)");
  rep.figure(to_svg(f.slope), "Optimal-LR slopes per model");
  rep.figure(to_svg(f.finetune), "Fine-tuned top-1 error vs compute (cf. Fig. 1)");
  rep.preformatted("nfscale study run --db study.db");
  return rep;
}

TEST(Html, EscapesTextAndContainsTablesAndFigures) {
  std::string html = study_report("loss.png", "loss.pdf").html();
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("<title>nfscale scaling study &lt;demo&gt;</title>"), std::string::npos);
  EXPECT_NE(html.find("R&amp;D notes: &quot;a &lt; b&quot;."), std::string::npos);
  EXPECT_NE(html.find("<td>F3 &lt;big&gt;</td>"), std::string::npos);
  EXPECT_EQ(html.find("<big>"), std::string::npos);
  EXPECT_NE(html.find("<th>held-out loss</th>"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"num\">2.71</td>"), std::string::npos);
  EXPECT_NE(html.find("<caption>Compute-optimal trials</caption>"), std::string::npos);
  EXPECT_EQ(count(html, "<tr>"), 4u);  // header + 3 rows
  EXPECT_EQ(count(html, "<svg"), 5u);
  EXPECT_EQ(count(html, "</svg>"), 5u);
  EXPECT_NE(html.find("Figure 5. Fine-tuned"), std::string::npos);
  EXPECT_NE(html.find("(<a href=\"loss.png\">PNG</a>, <a href=\"loss.pdf\">PDF</a>)"), std::string::npos);
  // Every trial shows on hover.
  EXPECT_NE(html.find("<title>F1, 2 epochs, LR 1.213: loss "), std::string::npos);
  EXPECT_EQ(html_escape("<&>\"'"), "&lt;&amp;&gt;&quot;&#39;");
  const size_t body = html.find("<body>"), end = html.find("</body>") + 7;
  EXPECT_EQ(tag_balance_problem(html.substr(body, end - body)), "");
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

// Runs headless Chromium with the flags that work as root in a container; returns its exit status.
int run_chromium(const std::string& chromium, const fs::path& profile, const std::string& args, const fs::path& out) {
  auto quoted = [](const std::string& s) { return "'" + s + "'"; };
  const std::string cmd = "timeout 120 " + chromium +
                          " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
                          " --disable-background-networking --disable-component-update --disable-sync"
                          " --hide-scrollbars --user-data-dir=" + quoted(profile.string()) + " " + args + " > " +
                          quoted(out.string()) + " 2>&1";
  return std::system(cmd.c_str());
}

// Renders the full report headless: the browser's DOM keeps a <title> on every marker (hover text), and the
// screenshot is not blank (many non-white pixels, the plot palette). In CI (CI=true) a missing Chromium fails the
// test; on a developer machine without it the test is skipped. Artifacts stay in <build>/test-artifacts/report
// for a human to look at (screenshot.png, the figures as PNG/PDF/SVG).
TEST(Html, RendersInChromium) {
  const char* chromium = "/usr/bin/chromium";
  if (access(chromium, X_OK) != 0) {
    const char* ci = std::getenv("CI");
    if (ci && std::string(ci) == "true")
      FAIL() << "CI=true but " << chromium << " is missing: scripts/setup.sh installs Debian's chromium package";
    GTEST_SKIP() << "no " << chromium << " (apt-get install chromium, or run scripts/setup.sh); CI does not skip";
  }
  const fs::path dir = fs::path(NFSCALE_BINARY_DIR) / "test-artifacts" / "report";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const DemoFigures f = demo_figures();
  write_figure(f.loss, (dir / "loss").string());
  write_figure(f.residual, (dir / "residual").string());
  write_figure(f.slope, (dir / "lr_slope").string());
  const HtmlReport rep = study_report("loss.png", "loss.pdf");
  rep.write((dir / "report.html").string());
  const std::string url = "'file://" + (dir / "report.html").string() + "'";

  ASSERT_EQ(run_chromium(chromium, dir / "profile-dom", "--dump-dom " + url, dir / "dom.html"), 0)
      << nfscale::read_file((dir / "dom.html").string());
  const std::string dom = nfscale::read_file((dir / "dom.html").string());
  EXPECT_EQ(count(dom, "<svg"), 5u);
  const size_t markers = count(rep.html(), "</title></circle>");
  EXPECT_GT(markers, 50u);
  EXPECT_EQ(count(dom, "</title></circle>"), markers) << "the browser parsed every marker's hover title";
  EXPECT_NE(dom.find("<title>F3, 8 epochs, LR"), std::string::npos);

  const fs::path shot = dir / "screenshot.png";
  ASSERT_EQ(run_chromium(chromium, dir / "profile-shot",
                         "--screenshot='" + shot.string() + "' --window-size=1200,3000 " + url, dir / "chromium.log"),
            0)
      << nfscale::read_file((dir / "chromium.log").string());
  ASSERT_TRUE(fs::exists(shot)) << nfscale::read_file((dir / "chromium.log").string());
  const Image img = decode_png_file(shot.string());
  EXPECT_EQ(img.width, 1200);
  EXPECT_EQ(img.height, 3000);
  size_t non_white = 0;
  std::set<uint32_t> colours;
  for (size_t i = 0; i < img.rgb.size(); i += 3) {
    if (img.rgb[i] < 240 || img.rgb[i + 1] < 240 || img.rgb[i + 2] < 240) ++non_white;
    colours.insert((img.rgb[i] << 16) | (img.rgb[i + 1] << 8) | img.rgb[i + 2]);
  }
  EXPECT_GT(non_white, img.rgb.size() / 3 / 100) << "screenshot is (nearly) blank";
  EXPECT_GT(colours.size(), 50u);
  fs::remove_all(dir / "profile-dom");
  fs::remove_all(dir / "profile-shot");
}

}  // namespace
