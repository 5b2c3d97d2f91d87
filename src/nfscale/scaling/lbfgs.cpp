// lbfgs.cpp - L-BFGS with backtracking Armijo line search (see lbfgs.h).
#include "nfscale/scaling/lbfgs.h"

#include <cmath>
#include <deque>

namespace nfscale::scaling {

LbfgsResult minimize_lbfgs(const Objective& f, Eigen::VectorXd x, const LbfgsOptions& opt) {
  const Eigen::Index n = x.size();
  Eigen::VectorXd g(n), g_new(n), x_new(n);
  double fx = f(x, g);
  std::deque<Eigen::VectorXd> s_hist, y_hist;
  std::deque<double> rho_hist;
  LbfgsResult res;
  if (!std::isfinite(fx)) {
    res.x = x;
    res.value = fx;
    return res;
  }
  int it = 0;
  for (; it < opt.max_iterations; ++it) {
    if (g.lpNorm<Eigen::Infinity>() <= opt.gradient_tolerance * std::max(1.0, std::fabs(fx))) {
      res.converged = true;
      break;
    }
    // Two-loop recursion: d = -H g.
    Eigen::VectorXd q = g;
    const size_t m = s_hist.size();
    std::vector<double> alpha(m);
    for (size_t i = m; i-- > 0;) {
      alpha[i] = rho_hist[i] * s_hist[i].dot(q);
      q -= alpha[i] * y_hist[i];
    }
    if (m > 0) q *= s_hist.back().dot(y_hist.back()) / y_hist.back().squaredNorm();
    for (size_t i = 0; i < m; ++i) {
      double beta = rho_hist[i] * y_hist[i].dot(q);
      q += (alpha[i] - beta) * s_hist[i];
    }
    Eigen::VectorXd d = -q;
    double slope = g.dot(d);
    if (!(slope < 0)) {  // not a descent direction: reset to steepest descent
      s_hist.clear();
      y_hist.clear();
      rho_hist.clear();
      d = -g;
      slope = -g.squaredNorm();
    }
    // First step of a fresh history is scaled so that it moves at most ~1 unit.
    double step = m == 0 ? std::min(1.0, 1.0 / std::max(1e-300, d.lpNorm<Eigen::Infinity>())) : 1.0;
    double f_new = 0;
    bool accepted = false;
    for (int ls = 0; ls < 60; ++ls) {
      x_new = x + step * d;
      f_new = f(x_new, g_new);
      if (std::isfinite(f_new) && f_new <= fx + 1e-4 * step * slope) {
        accepted = true;
        break;
      }
      step *= 0.5;
    }
    if (!accepted) break;  // line search failed: we are at numerical precision
    Eigen::VectorXd s = x_new - x, y = g_new - g;
    double sy = s.dot(y);
    double decrease = fx - f_new;
    x = x_new;
    g = g_new;
    double f_old = fx;
    fx = f_new;
    if (sy > 1e-300) {
      s_hist.push_back(s);
      y_hist.push_back(y);
      rho_hist.push_back(1.0 / sy);
      if (static_cast<int>(s_hist.size()) > opt.history) {
        s_hist.pop_front();
        y_hist.pop_front();
        rho_hist.pop_front();
      }
    }
    if (decrease <= opt.function_tolerance * std::max(std::fabs(f_old), 1e-300)) {
      res.converged = true;
      ++it;
      break;
    }
  }
  res.x = x;
  res.value = fx;
  res.iterations = it;
  return res;
}

}  // namespace nfscale::scaling
