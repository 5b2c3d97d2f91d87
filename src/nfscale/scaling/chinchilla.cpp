// chinchilla.cpp - Chinchilla Approach 3 fit with a Huber loss in log space and L-BFGS (see chinchilla.h).
#include "nfscale/scaling/chinchilla.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "nfscale/scaling/lbfgs.h"
#include "nfscale/scaling/powerlaw.h"
#include "nfscale/util/error.h"

namespace nfscale::scaling {
namespace {

// theta = (a, b, e, alpha, beta).
struct Problem {
  std::vector<double> logN, logD, logL;
  double delta;

  double operator()(const Eigen::VectorXd& t, Eigen::VectorXd& g) const {
    g.setZero(5);
    double total = 0;
    for (size_t i = 0; i < logL.size(); ++i) {
      double u1 = t[0] - t[3] * logN[i], u2 = t[1] - t[4] * logD[i], u3 = t[2];
      double m = std::max(u1, std::max(u2, u3));
      double e1 = std::exp(u1 - m), e2 = std::exp(u2 - m), e3 = std::exp(u3 - m);
      double s = e1 + e2 + e3;
      double lse = m + std::log(s);
      double r = lse - logL[i];
      double h, dh;
      if (std::fabs(r) <= delta) {
        h = 0.5 * r * r;
        dh = r;
      } else {
        h = delta * (std::fabs(r) - 0.5 * delta);
        dh = r > 0 ? delta : -delta;
      }
      total += h;
      double w1 = e1 / s, w2 = e2 / s, w3 = e3 / s;
      g[0] += dh * w1;
      g[1] += dh * w2;
      g[2] += dh * w3;
      g[3] -= dh * w1 * logN[i];
      g[4] -= dh * w2 * logD[i];
    }
    return total;
  }
};

ChinchillaParams to_params(const Eigen::VectorXd& t) {
  return {std::exp(t[2]), std::exp(t[0]), std::exp(t[1]), t[3], t[4]};
}

Eigen::VectorXd from_params(const ChinchillaParams& p) {
  Eigen::VectorXd t(5);
  t << std::log(p.A), std::log(p.B), std::log(p.E), p.alpha, p.beta;
  return t;
}

Problem make_problem(const std::vector<double>& N, const std::vector<double>& D, const std::vector<double>& L,
                     double delta, const std::string& what) {
  require(N.size() == D.size() && D.size() == L.size(), what + ": internal error, N, D and L differ in length");
  require(static_cast<int>(L.size()) >= kMinChinchillaPoints,
          what + ": too few points (" + std::to_string(L.size()) + "); the 5-parameter Chinchilla fit needs at least " +
              std::to_string(kMinChinchillaPoints) + " points");
  std::set<double> dn, dd;
  Problem p;
  p.delta = delta;
  for (size_t i = 0; i < L.size(); ++i) {
    for (auto [v, name] : {std::pair{N[i], "params"}, std::pair{D[i], "examples"}, std::pair{L[i], "loss"}})
      require(std::isfinite(v) && v > 0, what + ": point #" + std::to_string(i + 1) + " has " + name + " = " +
                                             std::to_string(v) + "; it must be positive and finite");
    dn.insert(N[i]);
    dd.insert(D[i]);
    p.logN.push_back(std::log(N[i]));
    p.logD.push_back(std::log(D[i]));
    p.logL.push_back(std::log(L[i]));
  }
  require(static_cast<int>(dn.size()) >= kMinChinchillaDistinct,
          what + ": only " + std::to_string(dn.size()) + " distinct model size(s) N; the Chinchilla fit needs at least " +
              std::to_string(kMinChinchillaDistinct) + " models (sizes) to separate the N and D terms");
  require(static_cast<int>(dd.size()) >= kMinChinchillaDistinct,
          what + ": only " + std::to_string(dd.size()) + " distinct data size(s) D; the Chinchilla fit needs at least " +
              std::to_string(kMinChinchillaDistinct) + " budgets");
  return p;
}

LbfgsOptions lbfgs_options() {
  LbfgsOptions o;
  o.max_iterations = 1000;
  o.gradient_tolerance = 1e-13;
  o.function_tolerance = 1e-16;
  return o;
}

}  // namespace

double ChinchillaParams::operator()(double N, double D) const {
  return E + A / std::pow(N, alpha) + B / std::pow(D, beta);
}

ChinchillaParams fit_chinchilla_raw(const std::vector<double>& N, const std::vector<double>& D,
                                    const std::vector<double>& L, const ChinchillaOptions& options,
                                    const std::string& what, double* objective, int* starts) {
  Problem prob = make_problem(N, D, L, options.huber_delta, what);
  Objective f = [&](const Eigen::VectorXd& t, Eigen::VectorXd& g) { return prob(t, g); };
  std::vector<double> exps, es, abs;
  if (options.coarse_grid) {
    exps = {0.25, 0.75, 1.5};
    es = {-1, 0, 1};
    abs = {0, 10, 20};
  } else {
    exps = {0, 0.5, 1, 1.5, 2};
    es = {-1, -0.5, 0, 0.5, 1};
    abs = {0, 5, 10, 15, 20, 25};
  }
  Eigen::VectorXd best;
  double best_v = INFINITY;
  int count = 0;
  auto opts = lbfgs_options();
  for (double alpha : exps)
    for (double beta : exps)
      for (double e : es)
        for (double a : abs)
          for (double b : abs) {
            Eigen::VectorXd t0(5);
            t0 << a, b, e, alpha, beta;
            LbfgsResult r = minimize_lbfgs(f, t0, opts);
            ++count;
            if (std::isfinite(r.value) && r.value < best_v) {
              best_v = r.value;
              best = r.x;
            }
          }
  require(std::isfinite(best_v), what + ": no initialisation converged; check the data for outliers");
  if (objective) *objective = best_v;
  if (starts) *starts = count;
  return to_params(best);
}

ChinchillaFit fit_chinchilla(const std::vector<RunPoint>& points, const ChinchillaOptions& options,
                             const BootstrapOptions& bootstrap) {
  const std::string what = "Chinchilla fit";
  require_fields(points, {Field::Params, Field::Examples, Field::Loss}, what);
  std::vector<double> N, D, L;
  for (auto& p : points) {
    N.push_back(p.params);
    D.push_back(p.examples);
    L.push_back(p.loss);
  }
  ChinchillaFit fit;
  ChinchillaParams best = fit_chinchilla_raw(N, D, L, options, what, &fit.objective, &fit.starts);
  fit.E.value = best.E;
  fit.A.value = best.A;
  fit.B.value = best.B;
  fit.alpha.value = best.alpha;
  fit.beta.value = best.beta;
  fit.a_exponent.value = best.beta / (best.alpha + best.beta);
  fit.b_exponent.value = best.alpha / (best.alpha + best.beta);
  fit.n = static_cast<int>(points.size());
  fit.distinct_params = static_cast<int>(std::set<double>(N.begin(), N.end()).size());
  fit.distinct_examples = static_cast<int>(std::set<double>(D.begin(), D.end()).size());
  std::vector<double> obs, pred;
  for (size_t i = 0; i < L.size(); ++i) {
    obs.push_back(std::log(L[i]));
    pred.push_back(std::log(best(N[i], D[i])));
  }
  fit.r2_log = r_squared(obs, pred);

  const Eigen::VectorXd t_best = from_params(best);
  auto opts = lbfgs_options();
  BootstrapSamples boot = run_bootstrap(
      points.size(),
      [&](const std::vector<size_t>& idx) {
        std::vector<double> n, d, l;
        for (size_t i : idx) {
          n.push_back(N[i]);
          d.push_back(D[i]);
          l.push_back(L[i]);
        }
        Problem prob = make_problem(n, d, l, options.huber_delta, what);
        Objective f = [&](const Eigen::VectorXd& t, Eigen::VectorXd& g) { return prob(t, g); };
        LbfgsResult r = minimize_lbfgs(f, t_best, opts);
        ChinchillaParams p = to_params(r.x);
        return std::vector<double>{p.E, p.A, p.B, p.alpha, p.beta, p.beta / (p.alpha + p.beta),
                                   p.alpha / (p.alpha + p.beta)};
      },
      bootstrap);
  attach_intervals({&fit.E, &fit.A, &fit.B, &fit.alpha, &fit.beta, &fit.a_exponent, &fit.b_exponent}, boot,
                   bootstrap.level);
  fit.bootstrap_requested = boot.requested;
  fit.bootstrap_succeeded = boot.succeeded();
  return fit;
}

nlohmann::json to_json(const ChinchillaFit& f) {
  return {{"E", to_json(f.E)},
          {"A", to_json(f.A)},
          {"B", to_json(f.B)},
          {"alpha", to_json(f.alpha)},
          {"beta", to_json(f.beta)},
          {"n_opt_exponent", to_json(f.a_exponent)},
          {"d_opt_exponent", to_json(f.b_exponent)},
          {"huber_objective", f.objective},
          {"r2_log", f.r2_log},
          {"n", f.n},
          {"distinct_params", f.distinct_params},
          {"distinct_examples", f.distinct_examples},
          {"starts", f.starts},
          {"bootstrap", {{"requested", f.bootstrap_requested}, {"succeeded", f.bootstrap_succeeded}}}};
}

}  // namespace nfscale::scaling
