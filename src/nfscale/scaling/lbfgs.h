// lbfgs.h - a small limited-memory BFGS minimiser (two-loop recursion + backtracking Armijo line search)
// for the smooth, low-dimensional objectives of the scaling fits. Plain Eigen, no LibTorch.
#pragma once
#include <Eigen/Dense>
#include <functional>

namespace nfscale::scaling {

// Returns f(x) and writes the gradient into `grad` (same size as x).
using Objective = std::function<double(const Eigen::VectorXd& x, Eigen::VectorXd& grad)>;

struct LbfgsOptions {
  int max_iterations = 500;
  int history = 10;
  double gradient_tolerance = 1e-12;  // stop when ||grad||_inf <= tol * max(1, |f|)
  double function_tolerance = 1e-15;  // stop when the relative decrease of f over one step is below this
};

struct LbfgsResult {
  Eigen::VectorXd x;
  double value = 0;
  int iterations = 0;
  bool converged = false;  // a tolerance was met (vs. iteration limit or line-search failure)
};

LbfgsResult minimize_lbfgs(const Objective& f, Eigen::VectorXd x0, const LbfgsOptions& options = {});

}  // namespace nfscale::scaling
