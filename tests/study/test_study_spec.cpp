// test_study_spec.cpp - StudySpec: per-model epoch budgets (model_epochs) and per-family learning rates
// (family_lrs) through the accessors, validation errors that name the field, the JSON round trip, and the presets'
// validity (the vs-vit preset mixes the two families).
// NFSCALE_NO_UNITY: compiled alone (its file-local helpers error_of share names with another test file's).
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "nfscale/study/study_spec.h"
#include "nfscale/util/error.h"

namespace nfscale::study {
namespace {

StudySpec two_models() {
  StudySpec s = preset("smoke");
  s.models = {"nano-F0", "mini-F0"};
  s.epochs = {1, 2};
  s.model_epochs = {{"mini-F0", {1, 2, 4, 8}}};
  s.out_dir = "/tmp/nfscale-study-spec-test";
  return s;
}

std::string error_of(const StudySpec& s) {
  try {
    s.validate();
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

TEST(StudySpec, ModelEpochsReplaceTheSharedBudgetsForThatModelOnly) {
  const StudySpec s = two_models();
  EXPECT_EQ(s.epochs_for("nano-F0"), (std::vector<double>{1, 2}));
  EXPECT_EQ(s.epochs_for("mini-F0"), (std::vector<double>{1, 2, 4, 8}));
  EXPECT_EQ(s.all_epochs(), (std::vector<double>{1, 2, 4, 8}));
  EXPECT_EQ(s.cell_count(), 6u);  // (2 + 4) budgets x 1 seed
  EXPECT_EQ(error_of(s), "");
}

TEST(StudySpec, BadModelEpochsAreErrorsNamingTheField) {
  StudySpec s = two_models();
  s.model_epochs["mini-F9"] = {1};
  EXPECT_NE(error_of(s).find("'model_epochs' names 'mini-F9'"), std::string::npos) << error_of(s);
  s = two_models();
  s.model_epochs["mini-F0"] = {};
  EXPECT_NE(error_of(s).find("model_epochs.mini-F0' is empty"), std::string::npos) << error_of(s);
  s = two_models();
  s.model_epochs["mini-F0"] = {2, 1};
  EXPECT_NE(error_of(s).find("model_epochs.mini-F0' must list budgets in ascending order"), std::string::npos);
  s = two_models();
  s.model_epochs["mini-F0"] = {1, -2};
  EXPECT_NE(error_of(s).find("model_epochs.mini-F0' has a non-positive budget"), std::string::npos);
  s = two_models();
  s.epochs = {1, 1};
  EXPECT_NE(error_of(s).find("'epochs' must list budgets in ascending order"), std::string::npos);
}

TEST(StudySpec, ModelEpochsSurviveTheJsonRoundTripAndBadTypesAreNamed) {
  const StudySpec s = two_models();
  const StudySpec back = study_from_json(to_json(s), "t.json", preset("smoke"));
  EXPECT_EQ(back.model_epochs, s.model_epochs);
  EXPECT_EQ(back.epochs, s.epochs);
  try {
    study_from_json(nlohmann::json{{"model_epochs", {1, 2}}}, "t.json", preset("smoke"));
    FAIL() << "a list where a table belongs was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("t.json: 'model_epochs' must be a table"), std::string::npos) << e.what();
  }
  try {
    study_from_json(nlohmann::json{{"model_epochs", {{"mini-F0", "four"}}}}, "t.json", preset("smoke"));
    FAIL() << "a string budget was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("'model_epochs' has the wrong type"), std::string::npos) << e.what();
  }
}

TEST(StudySpec, AStudyFileWithItsOwnModelsOrBudgetsDoesNotInheritThePresetsPerModelBudgets) {
  ASSERT_FALSE(preset("default").model_epochs.empty());
  const StudySpec own = study_from_json(nlohmann::json{{"models", {"mini-F0", "mini-F3"}}}, "t.json", preset("default"));
  EXPECT_TRUE(own.model_epochs.empty());
  EXPECT_EQ(error_of([&] { StudySpec s = own; s.out_dir = "/tmp/x"; return s; }()), "");
  const StudySpec keep = study_from_json(nlohmann::json{{"seeds", {0, 1}}}, "t.json", preset("default"));
  EXPECT_EQ(keep.model_epochs, preset("default").model_epochs);
}

TEST(StudySpec, EveryPresetValidatesAndTheDefaultGivesItsLargestMemberTheLongestBudget) {
  for (const auto& name : preset_names()) {
    StudySpec s = preset(name);
    EXPECT_NO_THROW(s.validate()) << name;
  }
  const StudySpec d = preset("default");
  const std::vector<double> all = d.all_epochs();
  EXPECT_EQ(d.epochs_for(d.models.back()).back(), all.back());
  for (size_t i = 0; i + 1 < d.models.size(); ++i)
    EXPECT_LT(d.epochs_for(d.models[i]).back(), all.back()) << d.models[i];
}

StudySpec mixed() {
  StudySpec s = preset("vs-vit");
  s.out_dir = "/tmp/nfscale-study-spec-test";
  return s;
}

TEST(StudySpec, AMixedStudyGivesEachFamilyItsOwnLearningRatesAndSplitsByFamily) {
  const StudySpec s = mixed();
  EXPECT_EQ(error_of(s), "");
  EXPECT_EQ(s.families(), (std::vector<std::string>{"nfnet", "vit"}));
  EXPECT_EQ(s.lrs_for("mini-F0"), (std::vector<double>{1.6}));
  EXPECT_EQ(s.lrs_for("mini-ViT-S"), (std::vector<double>{0.016}));
  const StudySpec v = s.for_family("vit");
  EXPECT_EQ(v.models, (std::vector<std::string>{"mini-ViT-Ti", "mini-ViT-S"}));
  EXPECT_EQ(v.families(), (std::vector<std::string>{"vit"}));
  EXPECT_EQ(v.epochs_for("mini-ViT-S"), s.epochs_for("mini-ViT-S"));  // per-model budgets kept
  // A family without its own entry uses `lrs`.
  StudySpec only_vit = s;
  only_vit.family_lrs.erase("nfnet");
  only_vit.lrs = {0.8};
  EXPECT_EQ(only_vit.lrs_for("nano-F0"), (std::vector<double>{0.8}));
  // The JSON round trip keeps the table.
  const StudySpec back = study_from_json(to_json(s), "t.json", preset("smoke"));
  EXPECT_EQ(back.family_lrs, s.family_lrs);
  EXPECT_EQ(back.models, s.models);
}

TEST(StudySpec, MixedStudyErrorsNameTheSettingAndTheFix) {
  StudySpec s = mixed();
  s.family_lrs["resnet"] = {0.1};
  EXPECT_NE(error_of(s).find("'family_lrs' names the family 'resnet', which does not exist (families: nfnet, vit)"),
            std::string::npos)
      << error_of(s);
  s = mixed();
  s.family_lrs["vit"] = {};
  EXPECT_NE(error_of(s).find("'family_lrs.vit' is empty"), std::string::npos) << error_of(s);
  s = mixed();
  s.family_lrs["vit"] = {0.01, -1};
  EXPECT_NE(error_of(s).find("'family_lrs.vit' has a non-positive learning rate"), std::string::npos);
  s = mixed();
  s.base.clip = 0.01;  // the default preset's AGC threshold would be AdamW's global-norm limit too
  EXPECT_NE(error_of(s).find("train setting 'clip' = 0.01 would be AGC's threshold"), std::string::npos)
      << error_of(s);
  s = mixed();
  s.base.weight_decay = 1e-4;
  EXPECT_NE(error_of(s).find("'weight_decay' is set"), std::string::npos) << error_of(s);
  s = mixed();
  s.base.optimizer = "sgd_agc";
  EXPECT_NE(error_of(s).find("train setting 'optimizer' = 'sgd_agc'"), std::string::npos) << error_of(s);
  s = mixed();
  s.plan_check = 2;
  EXPECT_NE(error_of(s).find("'plan_check' plans within one family"), std::string::npos) << error_of(s);
  // The same settings are fine in a single-family study.
  s = mixed().for_family("nfnet");
  s.base.clip = 0.01;
  s.plan_check = 2;
  EXPECT_EQ(error_of(s), "");
  try {
    study_from_json(nlohmann::json{{"family_lrs", {0.1}}}, "t.json", preset("smoke"));
    FAIL() << "a list where a table belongs was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("t.json: 'family_lrs' must be a table"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nfscale::study
