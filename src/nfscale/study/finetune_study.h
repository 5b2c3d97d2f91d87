// finetune_study.h - `nfscale study --finetune`: fine-tune the checkpoints on the pre-training frontier and, as the
// paper did, slightly larger models trained for slightly smaller budgets at about the same compute; then compare
// fine-tuned error with pre-training loss (paper Fig. 1 and the "lowest loss is not always best" observation).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nfscale/scaling/fits.h"
#include "nfscale/study/study_spec.h"

namespace nfscale::study {

struct FinetuneStudyOptions {
  std::string data = "digits";  // target data spec
  double epochs = 5.0;          // fine-tuning epochs (equal for every candidate: equal fine-tuning compute per model)
  int64_t max_frontier = 6;     // at most this many frontier checkpoints (the most expensive ones)
  bool larger_alternatives = true;  // also the next larger model at the closest compute
};

struct FinetuneCandidate {
  std::string trial;            // "trial N" of the pre-training run
  std::string model;
  double epochs = 0, lr = 0;
  double pretrain_flops = 0, pretrain_loss = 0;
  bool on_frontier = false;     // false: the larger-model alternative of a frontier point
  double finetune_top1_err = 0, finetune_loss = 0, finetune_flops = 0;
  std::string run_dir;
};

struct FinetuneStudy {
  std::vector<FinetuneCandidate> candidates;
  // Pairs where the checkpoint with the lower pre-training loss did worse after fine-tuning (frontier point vs its
  // larger-model alternative at similar compute), as human-readable lines.
  std::vector<std::string> reversals;
};

// Picks the candidates from the fitted study and fine-tunes each (resumable: finished fine-tunes are reused).
FinetuneStudy run_finetune_study(const StudySpec& spec, const scaling::StudyFit& fit,
                                 const FinetuneStudyOptions& options);

}  // namespace nfscale::study
