// powerlaw.cpp - log-space power-law fits (see powerlaw.h).
#include "nfscale/scaling/powerlaw.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <set>

#include "nfscale/util/error.h"

namespace nfscale::scaling {
namespace {

void validate(const std::vector<double>& x, const std::vector<double>& y, const std::string& what, int min_points) {
  require(x.size() == y.size(), what + ": internal error, x and y differ in length");
  require(static_cast<int>(x.size()) >= min_points,
          what + ": too few points (" + std::to_string(x.size()) + "); this fit needs at least " +
              std::to_string(min_points) + " points");
  std::set<double> distinct;
  for (size_t i = 0; i < x.size(); ++i) {
    require(std::isfinite(x[i]) && x[i] > 0,
            what + ": x value #" + std::to_string(i + 1) + " = " + std::to_string(x[i]) + " is not positive and finite");
    require(std::isfinite(y[i]) && y[i] > 0,
            what + ": y value #" + std::to_string(i + 1) + " = " + std::to_string(y[i]) + " is not positive and finite");
    distinct.insert(x[i]);
  }
  require(distinct.size() >= 2, what + ": all points have the same x (" + std::to_string(x[0]) +
                                    "); a power law needs at least 2 distinct x values");
}

}  // namespace

double PowerLaw::operator()(double x) const { return a * std::pow(x, b); }
double OffsetPowerLaw::operator()(double x) const { return E + a * std::pow(x, b); }

double r_squared(const std::vector<double>& obs, const std::vector<double>& pred) {
  double mean = 0;
  for (double v : obs) mean += v;
  mean /= obs.size();
  double ss_res = 0, ss_tot = 0;
  for (size_t i = 0; i < obs.size(); ++i) {
    ss_res += (obs[i] - pred[i]) * (obs[i] - pred[i]);
    ss_tot += (obs[i] - mean) * (obs[i] - mean);
  }
  return ss_tot > 0 ? 1 - ss_res / ss_tot : (ss_res == 0 ? 1.0 : 0.0);
}

PowerLaw fit_power_law(const std::vector<double>& x, const std::vector<double>& y, const std::string& what) {
  validate(x, y, what, kMinPowerLawPoints);
  const size_t n = x.size();
  double mx = 0, my = 0;
  std::vector<double> lx(n), ly(n);
  for (size_t i = 0; i < n; ++i) {
    lx[i] = std::log(x[i]);
    ly[i] = std::log(y[i]);
    mx += lx[i];
    my += ly[i];
  }
  mx /= n;
  my /= n;
  double sxx = 0, sxy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxx += (lx[i] - mx) * (lx[i] - mx);
    sxy += (lx[i] - mx) * (ly[i] - my);
  }
  PowerLaw f;
  f.b = sxy / sxx;
  f.a = std::exp(my - f.b * mx);
  f.n = static_cast<int>(n);
  std::vector<double> pred(n);
  for (size_t i = 0; i < n; ++i) pred[i] = my + f.b * (lx[i] - mx);
  f.r2 = r_squared(ly, pred);
  return f;
}

OffsetPowerLaw fit_offset_power_law(const std::vector<double>& x, const std::vector<double>& y, const std::string& what) {
  validate(x, y, what, kMinOffsetPowerLawPoints);
  const int n = static_cast<int>(x.size());
  // Work with centred log x for conditioning: Lhat = E + exp(la + b * (log x - mx)).
  double mx = 0;
  Eigen::VectorXd lx(n), ly(n);
  for (int i = 0; i < n; ++i) {
    lx[i] = std::log(x[i]);
    ly[i] = std::log(y[i]);
    mx += lx[i];
  }
  mx /= n;
  lx.array() -= mx;
  const double y_min = *std::min_element(y.begin(), y.end());
  const double e_hi = y_min * (1 - 1e-9);

  auto residuals = [&](const Eigen::Vector3d& p, Eigen::VectorXd& r, Eigen::MatrixXd* J) {
    r.resize(n);
    if (J) J->resize(n, 3);
    for (int i = 0; i < n; ++i) {
      double t = std::exp(p[0] + p[1] * lx[i]);
      double lh = p[2] + t;
      r[i] = ly[i] - std::log(lh);
      if (J) {
        (*J)(i, 0) = -t / lh;
        (*J)(i, 1) = -t * lx[i] / lh;
        (*J)(i, 2) = -1.0 / lh;
      }
    }
    return r.squaredNorm();
  };

  Eigen::Vector3d best_p = Eigen::Vector3d::Zero();
  double best_cost = INFINITY;
  for (double frac : {0.0, 0.3, 0.6, 0.85, 0.95, 0.99}) {
    // Initialise (la, b) by ordinary least squares of log(y - E0) on centred log x.
    double e0 = frac * y_min;
    Eigen::VectorXd lz(n);
    for (int i = 0; i < n; ++i) lz[i] = std::log(std::max(y[i] - e0, 1e-12 * y_min));
    double mz = lz.mean();
    double b0 = lx.dot(lz.array().matrix() - Eigen::VectorXd::Constant(n, mz)) / lx.squaredNorm();
    Eigen::Vector3d p(mz, b0, e0);
    Eigen::VectorXd r;
    Eigen::MatrixXd J;
    double cost = residuals(p, r, &J);
    double lambda = 1e-3;
    for (int it = 0; it < 300 && lambda < 1e14; ++it) {
      Eigen::Matrix3d H = J.transpose() * J;
      Eigen::Vector3d g = J.transpose() * r;
      Eigen::Matrix3d A = H;
      for (int k = 0; k < 3; ++k) A(k, k) += lambda * std::max(H(k, k), 1e-12);
      Eigen::Vector3d step = A.ldlt().solve(-g);
      Eigen::Vector3d q = p + step;
      q[2] = std::clamp(q[2], 0.0, e_hi);
      Eigen::VectorXd rq;
      Eigen::MatrixXd Jq;
      double cq = residuals(q, rq, &Jq);
      if (std::isfinite(cq) && cq < cost) {
        double rel = (cost - cq) / std::max(cost, 1e-300);
        p = q;
        r = rq;
        J = Jq;
        cost = cq;
        lambda = std::max(lambda / 3, 1e-12);
        if (rel < 1e-13) break;
      } else {
        lambda *= 4;
      }
    }
    if (cost < best_cost) {
      best_cost = cost;
      best_p = p;
    }
  }
  require(std::isfinite(best_cost), what + ": the offset power-law fit did not converge; check the data for outliers");
  OffsetPowerLaw f;
  f.E = best_p[2];
  f.b = best_p[1];
  f.a = std::exp(best_p[0] - f.b * mx);
  f.n = n;
  f.E_at_bound = f.E <= 1e-12 * y_min || f.E >= y_min * (1 - 1e-6);
  std::vector<double> obs(n), pred(n);
  for (int i = 0; i < n; ++i) {
    obs[i] = ly[i];
    pred[i] = std::log(best_p[2] + std::exp(best_p[0] + best_p[1] * lx[i]));
  }
  f.r2 = r_squared(obs, pred);
  return f;
}

}  // namespace nfscale::scaling
