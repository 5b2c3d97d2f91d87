// test_cli_weights.cpp - the weights commands end to end through the real binary: `predict` on timm's stored input
// reproduces timm's logits (safetensors, JSON, CSV), `export` writes timm's names and values (checked again by a
// short Python reader using Debian's python3-torch), `--device` is checked with a named error on every command that
// takes it, `nfscale models --json` output is what --model-json takes (NFNet and ViT, predict and train), and a
// misspelt subcommand is named with a suggestion.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cstring>
#include <sstream>

#include "nfscale/data/image.h"
#include "nfscale/data/image_codec.h"
#include "nfscale/models/registry.h"
#include "nfscale/weights/format.h"
#include "nfscale/weights/model_io.h"
#include "nfscale/weights/model_source.h"
#include "nfscale/weights/safetensors.h"
#include "weights_test_util.h"

namespace nfscale::weights {
namespace {
using namespace testing;

class WeightsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    fix_ = timm_fixture("nfnet-mini-f0");
    if (fix_.empty()) GTEST_SKIP() << "shared/fixtures/timm/nfnet-mini-f0 not found beside the source tree";
    dir_ = fresh_dir("cli");
    logits_ = SafetensorsFile(fix_ + "/io.safetensors").tensor("logits").clone();
  }
  // A run dir as `nfscale train` leaves it, holding timm's mini-F0 weights under nfscale's names.
  std::string make_run_dir() {
    const std::string run = dir_ + "/run";
    fs::create_directories(run);
    spit(run + "/config.json",
         R"({"model": "mini-F0", "data": "digits", "ws_form": "timm", "activation": "gelu_erf", "resolution": 32})");
    const WeightSet set = read_weights(fix_ + "/weights.safetensors");
    BuiltModel b = build_for_weights(set, {}, "fixture");
    import_weights(*b.model, set, {}, "fixture");
    weight_format("torch").write(run + "/weights.pt", export_weights(*b.model, "nfscale", {}));
    return run;
  }
  std::string fix_, dir_;
  torch::Tensor logits_;
};

TEST_F(WeightsCli, PredictOnTimmInputReproducesTimmLogits) {
  const std::string out = dir_ + "/p.safetensors";
  auto r = run_command(nfscale_bin() + " predict --from " + fix_ + "/weights.safetensors --tensor " + fix_ +
                       "/io.safetensors:input --top-k 3 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  SafetensorsFile f(out);
  EXPECT_LT((f.tensor("logits") - logits_).abs().max().item<double>(), 1e-5);
  EXPECT_TRUE(torch::equal(f.tensor("top_k_indices").select(1, 0), logits_.argmax(1)));
  // JSON and CSV carry the same numbers.
  r = run_command(nfscale_bin() + " predict --from " + fix_ + "/weights.safetensors --model mini-F0 --tensor " + fix_ +
                  "/io.safetensors --out " + dir_ + "/p.json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(slurp(dir_ + "/p.json"));
  ASSERT_EQ(j["predictions"].size(), 4u);
  EXPECT_NEAR(j["predictions"][2]["logits"][7].get<double>(), logits_[2][7].item<double>(), 1e-5);
  // The architecture as a spec JSON (what `nfscale models --json` prints) gives the same model.
  r = run_command(nfscale_bin() + " models --model mini-F0 --json > " + dir_ + "/spec.json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_command(nfscale_bin() + " predict --from " + fix_ + "/weights.safetensors --model-json " + dir_ +
                  "/spec.json --tensor " + fix_ + "/io.safetensors --out " + dir_ + "/pj.safetensors");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_LT((SafetensorsFile(dir_ + "/pj.safetensors").tensor("logits") - logits_).abs().max().item<double>(), 1e-5);
  // A spec of another shape: one error listing the tensors that do not fit.
  auto spec = nlohmann::json::parse(slurp(dir_ + "/spec.json"));
  spec[0]["widths"] = {32, 64, 128, 192};
  spit(dir_ + "/other.json", spec.dump());
  r = run_command(nfscale_bin() + " predict --from " + fix_ + "/weights.safetensors --model-json " + dir_ +
                  "/other.json --tensor " + fix_ + "/io.safetensors --out " + dir_ + "/po.safetensors");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("mis-shaped"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir_ + "/po.safetensors"));
  r = run_command(nfscale_bin() + " predict --from " + fix_ + "/weights.safetensors --tensor " + fix_ +
                  "/io.safetensors:input --out " + dir_ + "/p.csv");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::istringstream csv(slurp(dir_ + "/p.csv"));
  std::string header, row;
  std::getline(csv, header);
  std::getline(csv, row);
  EXPECT_EQ(header.rfind("input,logit_0,", 0), 0u) << header;
  EXPECT_NEAR(std::stod(row.substr(row.find(',') + 1)), logits_[0][0].item<double>(), 1e-5) << row;
}

TEST_F(WeightsCli, PredictImagesFromARunDir) {
  const std::string run = make_run_dir();
  const std::string imgs = dir_ + "/imgs";
  fs::create_directories(imgs);
  spit(imgs + "/notes.txt", "not an image");
  const std::string out = dir_ + "/imgs.json";
  auto r = run_command(nfscale_bin() + " predict --from " + run + " --images " + imgs + " --out " + out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("no .jpg, .jpeg or .png"), std::string::npos) << r.output;
  // Two 32 px grey PNGs: the eval transform at 32 px keeps every pixel, so the logits must equal the model on
  // (pixel/255 - mean)/std with the run's data statistics (digits: 0.3053, 0.3759).
  torch::manual_seed(5);
  const auto pixels = torch::randint(0, 256, {2, 1, 32, 32}, torch::kByte);
  spit(imgs + "/a.png", data::encode_png(data::from_tensor(pixels[0])));
  spit(imgs + "/b.PNG", data::encode_png(data::from_tensor(pixels[1])));
  r = run_command(nfscale_bin() + " predict --from " + run + " --images " + imgs + " --top-k 2 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const WeightSet set = read_weights(fix_ + "/weights.safetensors");
  BuiltModel b = build_for_weights(set, {}, "fixture");
  import_weights(*b.model, set, {}, "fixture");
  b.model->eval();
  torch::NoGradGuard ng;
  const auto expect = b.model->forward((pixels.to(torch::kFloat) / 255.0 - 0.3053) / 0.3759);  // [2, 10]
  auto j = nlohmann::json::parse(slurp(out));
  ASSERT_EQ(j["predictions"].size(), 2u);
  EXPECT_EQ(j["predictions"][1]["input"], "b.PNG");
  for (int n = 0; n < 2; ++n)
    for (int k = 0; k < 10; ++k)
      EXPECT_NEAR(j["predictions"][n]["logits"][k].get<double>(), expect[n][k].item<double>(), 1e-4) << n << "," << k;
  EXPECT_EQ(j["predictions"][0]["top_k"].size(), 2u);
  // An output of unknown kind is refused before anything is written.
  r = run_command(nfscale_bin() + " predict --from " + run + " --tensor " + fix_ + "/io.safetensors --out " + out +
                  ".txt");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("use .safetensors, .json or .csv"), std::string::npos) << r.output;
}

TEST_F(WeightsCli, ExportWritesTimmNamesReadableByPython) {
  const std::string run = make_run_dir();
  const std::string out = dir_ + "/export.safetensors";
  auto r = run_command(nfscale_bin() + " export --run-dir " + run + " --format safetensors --names timm --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Bit-identical to timm's own file, tensor by tensor.
  const WeightSet ours = read_weights(out), theirs = read_weights(fix_ + "/weights.safetensors");
  ASSERT_EQ(ours.tensors.size(), theirs.tensors.size());
  for (const auto& t : theirs.tensors) {
    const auto mine = ours.find(t.name);
    ASSERT_TRUE(mine.defined()) << t.name;
    ASSERT_EQ(mine.sizes(), t.tensor.sizes()) << t.name;
    EXPECT_EQ(std::memcmp(mine.data_ptr(), t.tensor.data_ptr(), t.tensor.nbytes()), 0) << t.name;
  }
  EXPECT_EQ(ours.metadata.at("ws_form"), "timm");
  // predict --from the exported file reproduces timm's logits (architecture and WS form from its metadata).
  r = run_command(nfscale_bin() + " predict --from " + out + " --tensor " + fix_ + "/io.safetensors --out " + dir_ +
                  "/e.safetensors");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_LT((SafetensorsFile(dir_ + "/e.safetensors").tensor("logits") - logits_).abs().max().item<double>(), 1e-5);
  // Python (Debian's python3-torch), parsing the header by hand: timm's names, shapes and tensors.
  r = python_read_back(out, fix_);
  ASSERT_EQ(r.exit_code, 0) << "python3 with torch (Debian python3-torch, scripts/setup.sh) failed:\n" << r.output;
  EXPECT_NE(r.output.find("python-ok 97"), std::string::npos) << r.output;
}

TEST_F(WeightsCli, ExportFailureLeavesNothing) {
  const std::string run = make_run_dir();
  // The target is an existing (non-empty) directory: the final rename fails, the temp file is removed.
  const std::string out = dir_ + "/taken";
  fs::create_directories(out + "/inside");
  auto r = run_command(nfscale_bin() + " export --run-dir " + run + " --out " + out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("cannot rename"), std::string::npos) << r.output;
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
  EXPECT_TRUE(fs::is_directory(out + "/inside"));
  r = run_command(nfscale_bin() + " export --run-dir " + dir_ + " --out " + dir_ + "/y.safetensors");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("config.json"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir_ + "/y.safetensors"));
}

TEST_F(WeightsCli, EvalAndTrainFromASafetensorsFile) {
  // eval --from FILE: the model from the file, the data from --data.
  auto r = run_command(nfscale_bin() + " eval --from " + fix_ + "/weights.safetensors --data digits --res 32 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  EXPECT_GT(j["examples"].get<int64_t>(), 0);
  EXPECT_EQ(j["resolution"], 32);
  // train --from FILE: the initialisation; the file's WS form and activation are kept in the run's config.
  const std::string run = dir_ + "/trained";
  r = run_command(nfscale_bin() + " train --from " + fix_ + "/weights.safetensors --data digits --test-data none "
                  "--train-examples 32 --batch 16 --epochs 1 --res 32 --precision fp32 --ema-decay 0 --quiet --run-dir " + run);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto cfg = nlohmann::json::parse(slurp(run + "/config.json"));
  EXPECT_EQ(cfg["model"], "mini-F0");
  EXPECT_EQ(cfg["ws_form"], "timm");
  EXPECT_EQ(cfg["activation"], "gelu_erf");
  // The body started from timm's weights: after 2 small-LR steps it is still close to them, far from a fresh init.
  const WeightSet trained = read_weights(run + "/weights.pt"), timm = read_weights(fix_ + "/weights.safetensors");
  const auto w0 = timm.find("stages.2.0.conv2.weight"), w1 = trained.find("block2.conv1.weight");
  ASSERT_TRUE(w1.defined());
  EXPECT_LT((w1 - w0).abs().max().item<double>(), 0.1 * w0.abs().max().item<double>());
}

TEST_F(WeightsCli, BadWeightsFilesAreNamedErrorsThroughTheBinary) {
  // What the reader refuses (tests/weights/test_safetensors.cpp) reaches the user as one line naming the file, exit 2,
  // and no output file.
  const std::string good = slurp(fix_ + "/weights.safetensors");
  uint64_t header_len = 0;
  std::memcpy(&header_len, good.data(), 8);
  std::string lying = good;
  const auto at = lying.find("\"data_offsets\":[0,");
  ASSERT_NE(at, std::string::npos);
  lying.replace(at, 18, "\"data_offsets\":[4,");  // same length: the header now lies about where a tensor starts
  std::string odd_dtype = good;
  const auto f32 = odd_dtype.find("\"F32\"");
  ASSERT_LT(f32, 8 + header_len);
  odd_dtype.replace(f32, 5, "\"F7X\"");
  const std::pair<std::string, std::string> cases[] = {
      {good.substr(0, good.size() / 2), "truncated"},
      {lying, "the header lies"},
      {odd_dtype, "unknown dtype 'F7X'"},
  };
  for (const auto& [bytes, what] : cases) {
    const std::string file = dir_ + "/bad.safetensors", out = dir_ + "/out.safetensors";
    spit(file, bytes);
    auto r = run_command(nfscale_bin() + " predict --from " + file + " --tensor " + fix_ + "/io.safetensors --out " + out);
    EXPECT_EQ(r.exit_code, 2) << what << "\n" << r.output;
    EXPECT_NE(r.output.find("error: " + file + ": "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(what), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(out)) << what;
  }
}

TEST_F(WeightsCli, DeviceFlagIsANamedErrorOnEveryCommand) {
  // This machine has no GPU: `--device cuda` on each command that takes it fails before any work, naming the flag.
  if (torch::cuda::is_available()) GTEST_SKIP() << "a CUDA device is present: nothing to refuse";
  const std::string file = fix_ + "/weights.safetensors", io = fix_ + "/io.safetensors";
  const std::string commands[] = {
      "train --model mini-F0 --data digits --epochs 1 --quiet --run-dir " + dir_ + "/t",
      "finetune --from " + file + " --run-dir " + dir_ + "/f",
      "eval --from " + file + " --data digits",
      "predict --from " + file + " --tensor " + io + " --out " + dir_ + "/p.safetensors",
      "bench --case mini-F0:17:2 --reps 1 --peer none",
  };
  for (const auto& cmd : commands) {
    auto r = run_command(nfscale_bin() + " " + cmd + " --device cuda:1");
    EXPECT_EQ(r.exit_code, 2) << cmd << "\n" << r.output;
    EXPECT_NE(r.output.find("--device 'cuda:1'"), std::string::npos) << cmd << "\n" << r.output;
    EXPECT_NE(r.output.find("no CUDA device"), std::string::npos) << cmd << "\n" << r.output;
    r = run_command(nfscale_bin() + " " + cmd + " --device gpu");
    EXPECT_EQ(r.exit_code, 2) << cmd << "\n" << r.output;
    EXPECT_NE(r.output.find("--device 'gpu': unknown device; valid: cpu, cuda, cuda:N"), std::string::npos)
        << cmd << "\n" << r.output;
  }
  EXPECT_FALSE(fs::exists(dir_ + "/t"));
  EXPECT_FALSE(fs::exists(dir_ + "/p.safetensors"));
}

// `nfscale models --model NAME --json > spec.json` is what --model-json takes, for every family, also edited to
// describe another shape; the whole listing (`models --json`, every model) is refused with the way to pick one.
class ModelJsonCli : public ::testing::TestWithParam<const char*> {};

TEST_P(ModelJsonCli, ModelsJsonOutputIsTheArchitectureOfAWeightsFile) {
  const std::string dir = fresh_dir(std::string("model_json_") + GetParam());
  auto r = run_command(nfscale_bin() + " models --model " + GetParam() + " --json > " + dir + "/spec.json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  nlohmann::json spec = nlohmann::json::parse(slurp(dir + "/spec.json"));
  ASSERT_TRUE(spec.is_array() && spec.size() == 1) << spec.dump();
  // Another shape than the member's: fewer blocks for a ViT, other widths for an NFNet.
  if (spec[0]["family"] == "vit") spec[0]["depth"] = 1;
  else spec[0]["widths"] = {32, 64, 128, 192};
  spit(dir + "/edited.json", spec.dump(2));
  // A model of that shape with random weights, saved in nfscale's names with no metadata: only the flag says what
  // it is.
  models::ModelConfig mc;
  mc.name = models::model_from_json(spec, "edited.json");
  ASSERT_TRUE(models::is_json_spec(mc.name)) << mc.name;
  const models::ModelInfo info = models::model_info(mc.name);
  mc.num_classes = info.ref_num_classes;
  mc.in_channels = info.ref_in_channels;
  torch::manual_seed(11);
  auto model = models::build_model(mc);
  {
    torch::NoGradGuard ng;
    for (auto& p : model->parameters()) p.add_(torch::randn_like(p) * 0.05);  // no zero heads or skip gains
  }
  model->eval();
  const Metadata names_only = {{"names", "nfscale"}, {"producer", "nfscale"}};  // (a ViT's names alone are timm's)
  write_safetensors(dir + "/w.safetensors", export_weights(*model, "nfscale").tensors, names_only);
  const auto x = torch::randn({3, mc.in_channels, info.train_res, info.train_res});  // [3, C, R, R]
  write_safetensors(dir + "/x.safetensors", {{"input", x}});
  torch::Tensor expect;
  {
    torch::NoGradGuard ng;
    expect = model->forward(x);  // [3, K]
  }
  const std::string predict = nfscale_bin() + " predict --from " + dir + "/w.safetensors --tensor " + dir +
                              "/x.safetensors --out " + dir + "/p.safetensors";
  r = run_command(predict + " --model-json " + dir + "/edited.json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_LT((SafetensorsFile(dir + "/p.safetensors").tensor("logits") - expect).abs().max().item<double>(), 1e-5);
  // Without the flag the file names no model; with the member's unedited spec the tensors do not fit.
  r = run_command(predict);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--model-json SPEC.json"), std::string::npos) << r.output;
  r = run_command(predict + " --model-json " + dir + "/spec.json");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("does not fit model"), std::string::npos) << r.output;
  // The whole listing is a list of every model: refused, naming the file and how to print one entry.
  r = run_command(nfscale_bin() + " models --json > " + dir + "/all.json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_command(predict + " --model-json " + dir + "/all.json");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(dir + "/all.json: holds"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("keep exactly one (e.g. `nfscale models --model"), std::string::npos) << r.output;
  // --model and --model-json together are refused.
  r = run_command(predict + " --model " + GetParam() + " --model-json " + dir + "/edited.json");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("excludes"), std::string::npos) << r.output;
  // train takes the same file: the run's config.json records the edited spec as its model.
  r = run_command(nfscale_bin() + " train --model-json " + dir + "/edited.json --data digits --test-data none "
                  "--train-examples 32 --batch 16 --epochs 1 --res " + std::to_string(info.train_res) +
                  " --precision fp32 --ema-decay 0 --quiet --run-dir " + dir + "/run");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(slurp(dir + "/run/config.json"))["model"], mc.name);
}

INSTANTIATE_TEST_SUITE_P(Families, ModelJsonCli, ::testing::Values("mini-F0", "mini-ViT-Ti"),
                         [](const auto& info) { return std::string(info.param) == "mini-F0" ? "NFNet" : "ViT"; });

TEST(Cli, UnknownSubcommandIsNamedWithTheNearestOne) {
  auto r = run_command(nfscale_bin() + " trian --model mini-F0");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("unknown subcommand 'trian'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("did you mean 'train'?"), std::string::npos) << r.output;
  r = run_command(nfscale_bin() + " evl --help");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("did you mean 'eval'?"), std::string::npos) << r.output;
  r = run_command(nfscale_bin() + " predict --help");  // its own help, not the general one
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("--tensor"), std::string::npos) << r.output;
  r = run_command(nfscale_bin() + " models --model mini-F0");  // global --threads 1 before it is skipped
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace nfscale::weights
