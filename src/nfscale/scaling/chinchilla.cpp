// chinchilla.cpp - Chinchilla Approach 3 fit with a Huber loss in log space and L-BFGS (see chinchilla.h).
#include "nfscale/scaling/chinchilla.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "nfscale/scaling/lbfgs.h"
#include "nfscale/scaling/powerlaw.h"
#include "nfscale/util/error.h"
#include "nfscale/util/rng.h"

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

std::vector<Eigen::VectorXd> chinchilla_grid(const ChinchillaOptions& options) {
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
  std::vector<Eigen::VectorXd> out;
  for (double alpha : exps)
    for (double beta : exps)
      for (double e : es)
        for (double a : abs)
          for (double b : abs) {
            Eigen::VectorXd t0(5);
            t0 << a, b, e, alpha, beta;
            out.push_back(t0);
          }
  return out;
}

namespace {

// Minimises from every start; returns the best end point and fills `values` with each start's final objective.
Eigen::VectorXd best_of_starts(const Problem& prob, const std::vector<Eigen::VectorXd>& starts, double* best_value,
                               std::vector<double>* values, const std::string& what) {
  Objective f = [&](const Eigen::VectorXd& t, Eigen::VectorXd& g) { return prob(t, g); };
  Eigen::VectorXd best;
  double best_v = INFINITY;
  auto opts = lbfgs_options();
  for (const auto& t0 : starts) {
    LbfgsResult r = minimize_lbfgs(f, t0, opts);
    if (values) values->push_back(std::isfinite(r.value) ? r.value : INFINITY);
    if (std::isfinite(r.value) && r.value < best_v) {
      best_v = r.value;
      best = r.x;
    }
  }
  require(std::isfinite(best_v), what + ": no initialisation converged; check the data for outliers");
  *best_value = best_v;
  return best;
}

// For each distinct (N, D), the cell with the lowest mean loss over its seeds (the best learning rate).
void best_per_size(const std::vector<RunPoint>& cells, std::vector<double>& N, std::vector<double>& D,
                   std::vector<double>& L) {
  std::map<std::pair<double, double>, double> best;
  for (auto& p : cells) {
    auto [it, fresh] = best.emplace(std::pair{p.params, p.examples}, p.loss);
    if (!fresh) it->second = std::min(it->second, p.loss);
  }
  N.clear();
  D.clear();
  L.clear();
  for (auto& [nd, l] : best) {
    N.push_back(nd.first);
    D.push_back(nd.second);
    L.push_back(l);
  }
}

std::vector<double> chinchilla_row(const ChinchillaParams& p) {
  return {p.E, p.A, p.B, p.alpha, p.beta, p.beta / (p.alpha + p.beta), p.alpha / (p.alpha + p.beta)};
}

}  // namespace

ChinchillaParams fit_chinchilla_raw(const std::vector<double>& N, const std::vector<double>& D,
                                    const std::vector<double>& L, const ChinchillaOptions& options,
                                    const std::string& what, double* objective, int* starts) {
  Problem prob = make_problem(N, D, L, options.huber_delta, what);
  std::vector<Eigen::VectorXd> grid = chinchilla_grid(options);
  double best_v = 0;
  Eigen::VectorXd best = best_of_starts(prob, grid, &best_v, nullptr, what);
  if (objective) *objective = best_v;
  if (starts) *starts = static_cast<int>(grid.size());
  return to_params(best);
}

ChinchillaFit fit_chinchilla(const std::vector<RunPoint>& points, const ChinchillaOptions& options,
                             const BootstrapOptions& bootstrap) {
  const std::string what = "Chinchilla fit";
  require_fields(points, {Field::Params, Field::Examples, Field::Loss}, what);
  SeedCells cells = aggregate_seeds(points);
  std::vector<double> N, D, L;
  best_per_size(cells.cells, N, D, L);
  ChinchillaFit fit;
  fit.seeds = cells;
  Problem prob = make_problem(N, D, L, options.huber_delta, what);
  std::vector<Eigen::VectorXd> grid = chinchilla_grid(options);
  std::vector<double> start_values;
  ChinchillaParams best = to_params(best_of_starts(prob, grid, &fit.objective, &start_values, what));
  fit.starts = static_cast<int>(grid.size());
  fit.E.value = best.E;
  fit.A.value = best.A;
  fit.B.value = best.B;
  fit.alpha.value = best.alpha;
  fit.beta.value = best.beta;
  fit.a_exponent.value = best.beta / (best.alpha + best.beta);
  fit.b_exponent.value = best.alpha / (best.alpha + best.beta);
  fit.n = static_cast<int>(L.size());
  fit.runs = static_cast<int>(points.size());
  fit.distinct_params = static_cast<int>(std::set<double>(N.begin(), N.end()).size());
  fit.distinct_examples = static_cast<int>(std::set<double>(D.begin(), D.end()).size());
  std::vector<double> obs, pred;
  for (size_t i = 0; i < L.size(); ++i) {
    obs.push_back(std::log(L[i]));
    pred.push_back(std::log(best(N[i], D[i])));
  }
  fit.r2_log = r_squared(obs, pred);

  // Bootstrap starts: the options.bootstrap_best_starts grid starts that ended lowest on the full data, plus
  // options.bootstrap_random_starts grid starts drawn afresh for each resample (never the full-data optimum).
  std::vector<size_t> order(grid.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return start_values[a] < start_values[b]; });
  std::vector<Eigen::VectorXd> best_starts;
  for (size_t i = 0; i < order.size() && static_cast<int>(best_starts.size()) < options.bootstrap_best_starts; ++i)
    best_starts.push_back(grid[order[i]]);
  fit.bootstrap_starts = static_cast<int>(best_starts.size()) + options.bootstrap_random_starts;
  BootstrapSamples boot = run_bootstrap_rng(
      [&](SplitMix& rng) {
        // With measured seed noise: the cell means drawn under it (parametric); without: case resampling.
        std::vector<double> n, d, l, rn, rd, rl;
        best_per_size(draw_seed_noise(cells, rng), n, d, l);
        if (cells.has_noise()) {
          rn = n;
          rd = d;
          rl = l;
        } else {
          for (size_t i : resample_indices(l.size(), rng)) {
            rn.push_back(n[i]);
            rd.push_back(d[i]);
            rl.push_back(l[i]);
          }
        }
        std::vector<Eigen::VectorXd> starts = best_starts;
        for (int k = 0; k < options.bootstrap_random_starts; ++k) starts.push_back(grid[rng.below(grid.size())]);
        Problem rprob = make_problem(rn, rd, rl, options.huber_delta, what);
        double v = 0;
        return chinchilla_row(to_params(best_of_starts(rprob, starts, &v, nullptr, what)));
      },
      bootstrap);
  attach_intervals({&fit.E, &fit.A, &fit.B, &fit.alpha, &fit.beta, &fit.a_exponent, &fit.b_exponent}, boot,
                   bootstrap.level);
  fit.bootstrap_requested = boot.requested;
  fit.bootstrap_succeeded = boot.succeeded();
  flag_chinchilla_bounds(fit, *std::min_element(L.begin(), L.end()));
  return fit;
}

void flag_chinchilla_bounds(ChinchillaFit& fit, double min_loss) {
  if (fit.E.value < kChinchillaBoundE * min_loss) fit.E.flag_bound("E -> 0 (below 1e-3 of the lowest loss)");
  bool alpha_bound = fit.alpha.value < kChinchillaMinExponent || fit.alpha.value > kChinchillaMaxExponent;
  bool beta_bound = fit.beta.value < kChinchillaMinExponent || fit.beta.value > kChinchillaMaxExponent;
  if (alpha_bound) {
    fit.alpha.flag_bound("alpha outside [0.01, 10]: the N term is constant or vanishes");
    fit.A.flag_bound("A is not identified when alpha is at a bound");
  }
  if (beta_bound) {
    fit.beta.flag_bound("beta outside [0.01, 10]: the D term is constant or vanishes");
    fit.B.flag_bound("B is not identified when beta is at a bound");
  }
  if (alpha_bound || beta_bound) {
    fit.a_exponent.flag_bound("alpha or beta at a bound");
    fit.b_exponent.flag_bound("alpha or beta at a bound");
  }
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
          {"runs", f.runs},
          {"seed_noise", to_json(f.seeds)},
          {"distinct_params", f.distinct_params},
          {"distinct_examples", f.distinct_examples},
          {"starts", f.starts},
          {"bootstrap", {{"requested", f.bootstrap_requested}, {"succeeded", f.bootstrap_succeeded},
                         {"starts_per_resample", f.bootstrap_starts}}}};
}

}  // namespace nfscale::scaling
