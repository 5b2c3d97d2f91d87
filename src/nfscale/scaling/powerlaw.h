// powerlaw.h - power-law fits in log space: y = a * x^b by least squares on log y vs log x, and
// y = E + a * x^b by nonlinear least squares on log y (Levenberg-Marquardt, E constrained to [0, min y)).
#pragma once
#include <string>
#include <vector>

namespace nfscale::scaling {

// y = a * x^b, fitted as log y = log a + b log x. r2 is the coefficient of determination of log y.
struct PowerLaw {
  double a = 0, b = 0, r2 = 0;
  int n = 0;
  double operator()(double x) const;
};

// y = E + a * x^b, fitted by minimising sum (log y - log(E + a x^b))^2. r2 in log y.
struct OffsetPowerLaw {
  double E = 0, a = 0, b = 0, r2 = 0;
  int n = 0;
  bool E_at_bound = false;  // E ended on 0 or min y: the offset is not identified by the data
  double operator()(double x) const;
};

constexpr int kMinPowerLawPoints = 3;
constexpr int kMinOffsetPowerLawPoints = 4;

// Throw UserError naming `what` when there are too few points, too few distinct x, or non-positive /
// non-finite values.
PowerLaw fit_power_law(const std::vector<double>& x, const std::vector<double>& y, const std::string& what);
OffsetPowerLaw fit_offset_power_law(const std::vector<double>& x, const std::vector<double>& y, const std::string& what);

// Coefficient of determination of predictions against observations (both already in the space of interest).
double r_squared(const std::vector<double>& observed, const std::vector<double>& predicted);

}  // namespace nfscale::scaling
