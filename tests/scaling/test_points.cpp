// test_points.cpp - CSV parsing of run points: columns, missing values, and errors naming file, line and column.
// NFSCALE_NO_UNITY: compiled alone (its file-local helpers contains share names with another test file's).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "nfscale/scaling/points.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"

namespace nfscale::scaling {
namespace {

std::string error_of(const std::string& text) {
  try {
    parse_points_csv(text, "runs.csv");
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

TEST(Points, ParsesColumnsInAnyOrderWithMissingOptionals) {
  const std::string text =
      "# comment line\n"
      "loss,flops,params,examples,model,epochs,lr,seed,top1_err\n"
      "2.5,1e18,7.15e7,1.28e6,\"F0, small\",1,1.6,3,0.25\n"
      "\n"
      "2.25,2e18,1.326e8,,F1,,,,\n";
  auto pts = parse_points_csv(text, "runs.csv");
  ASSERT_EQ(pts.size(), 2u);
  EXPECT_EQ(pts[0].model, "F0, small");
  EXPECT_DOUBLE_EQ(pts[0].loss, 2.5);
  EXPECT_DOUBLE_EQ(pts[0].flops, 1e18);
  EXPECT_DOUBLE_EQ(pts[0].params, 7.15e7);
  EXPECT_DOUBLE_EQ(pts[0].examples, 1.28e6);
  EXPECT_DOUBLE_EQ(pts[0].epochs, 1);
  EXPECT_DOUBLE_EQ(pts[0].lr, 1.6);
  EXPECT_EQ(pts[0].seed, 3);
  EXPECT_DOUBLE_EQ(pts[0].top1_err, 0.25);
  EXPECT_EQ(pts[0].origin, "runs.csv line 3");
  EXPECT_TRUE(std::isnan(pts[1].examples));
  EXPECT_TRUE(std::isnan(pts[1].lr));
  EXPECT_EQ(pts[1].origin, "runs.csv line 5");
}

TEST(Points, ModelNameDerivedFromParamsWhenColumnAbsent) {
  auto pts = parse_points_csv("params,loss\n1.5e8,2.0\n", "x.csv");
  ASSERT_EQ(pts.size(), 1u);
  EXPECT_EQ(pts[0].model, "N=1.5e+08");
}

TEST(Points, ErrorsNameFileLineAndColumn) {
  std::string e = error_of("model,flops,loss\nF0,1e18,2.0\nF1,2e18,abc\n");
  EXPECT_TRUE(contains(e, "runs.csv line 3")) << e;
  EXPECT_TRUE(contains(e, "column 'loss'")) << e;
  EXPECT_TRUE(contains(e, "'abc'")) << e;

  e = error_of("model,flops,loss\nF0,-1e18,2.0\n");
  EXPECT_TRUE(contains(e, "line 2") && contains(e, "column 'flops'") && contains(e, "positive")) << e;

  e = error_of("model,flops,loss\nF0,1e18,nan\n");
  EXPECT_TRUE(contains(e, "line 2") && contains(e, "column 'loss'") && contains(e, "not finite")) << e;

  e = error_of("model,flops,loss\nF0,1e18\n");
  EXPECT_TRUE(contains(e, "line 2") && contains(e, "2 cells") && contains(e, "header has 3")) << e;

  e = error_of("model,flop,loss\n");
  EXPECT_TRUE(contains(e, "line 1") && contains(e, "column 2") && contains(e, "unknown header 'flop'")) << e;

  e = error_of("model,flops\nF0,1e18\n");
  EXPECT_TRUE(contains(e, "no 'loss' column")) << e;

  e = error_of("model,flops,loss\nF0,1e18,\n");
  EXPECT_TRUE(contains(e, "line 2") && contains(e, "loss is empty")) << e;

  e = error_of("# only comments\n");
  EXPECT_TRUE(contains(e, "no header")) << e;

  e = error_of("model,loss,top1_err\nF0,2.0,45\n");
  EXPECT_TRUE(contains(e, "column 'top1_err'") && contains(e, "fraction")) << e;
}

TEST(Points, ReadsFileAndReportsMissingFile) {
  auto dir = std::filesystem::temp_directory_path() / "nfscale_test_points";
  std::filesystem::create_directories(dir);
  std::string path = (dir / "points.csv").string();
  write_file_atomic(path, "model,params,examples,flops,loss\nF0,7e7,1e6,4e17,2.5\n");
  auto pts = read_points_csv(path);
  ASSERT_EQ(pts.size(), 1u);
  EXPECT_EQ(pts[0].origin, path + " line 2");
  EXPECT_THROW(read_points_csv((dir / "missing.csv").string()), UserError);
  std::filesystem::remove_all(dir);
}

TEST(Points, RequireFieldsNamesPointAndField) {
  std::vector<RunPoint> pts(2);
  pts[0].loss = 1.0;
  pts[0].flops = 1e18;
  pts[1].loss = std::nan("");
  pts[1].flops = 2e18;
  pts[1].origin = "runs.csv line 9";
  try {
    require_fields(pts, {Field::Flops, Field::Loss}, "frontier fit");
    FAIL();
  } catch (const UserError& e) {
    std::string m = e.what();
    EXPECT_TRUE(contains(m, "frontier fit") && contains(m, "runs.csv line 9") && contains(m, "loss")) << m;
  }
}

}  // namespace
}  // namespace nfscale::scaling
