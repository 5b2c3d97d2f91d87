// plot.cpp - axis ranges and ticks, plot layout, and rendering onto a canvas (SVG or PNG).
#include "nfscale/report/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"

namespace nfscale::report {
namespace {

constexpr Rgb kBlack{0, 0, 0};
constexpr Rgb kWhite{255, 255, 255};
constexpr Rgb kGrid{225, 225, 225};
constexpr Rgb kMinorGrid{243, 243, 243};
constexpr Rgb kText{34, 34, 34};

bool visible(double v, Scale s) { return std::isfinite(v) && (s == Scale::Linear || v > 0.0); }

// Data range of one axis, padded by 5% (in log10 space on a log axis), unless overridden.
std::pair<double, double> axis_range(const Plot& plot, bool x_axis) {
  const Scale scale = x_axis ? plot.x_scale : plot.y_scale;
  const auto& over = x_axis ? plot.x_range : plot.y_range;
  const char* name = x_axis ? "x_range" : "y_range";
  if (over) {
    require(over->first < over->second, std::string("plot '") + plot.title + "': " + name +
                                            " must have lo < hi; fix the range or leave it unset");
    require(scale == Scale::Linear || over->first > 0.0, std::string("plot '") + plot.title + "': " + name +
                                                             " of a log axis must be positive; fix the range");
    return *over;
  }
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto& s : plot.series)
    for (const auto& p : s.points) {
      if (!visible(p.x, plot.x_scale) || !visible(p.y, plot.y_scale)) continue;
      const double v = x_axis ? p.x : p.y;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  if (!std::isfinite(lo)) return scale == Scale::Log ? std::make_pair(1.0, 10.0) : std::make_pair(0.0, 1.0);
  if (scale == Scale::Log) {
    double llo = std::log10(lo), lhi = std::log10(hi);
    if (lhi - llo < 1e-9) {
      llo -= 0.3;
      lhi += 0.3;
    }
    const double pad = 0.05 * (lhi - llo);
    return {std::pow(10.0, llo - pad), std::pow(10.0, lhi + pad)};
  }
  if (hi - lo < 1e-12 * std::max(1.0, std::abs(hi))) {
    const double d = std::max(1.0, std::abs(hi) * 0.1);
    return {lo - d, hi + d};
  }
  const double pad = 0.05 * (hi - lo);
  return {lo - pad, hi + pad};
}

std::vector<Tick> axis_ticks(const Plot& plot, bool x_axis, double lo, double hi) {
  const auto& explicit_ticks = x_axis ? plot.x_ticks : plot.y_ticks;
  if (!explicit_ticks.empty()) {
    std::vector<Tick> out;
    for (double v : explicit_ticks)
      if (v >= lo && v <= hi) out.push_back({v, format_tick(v)});
    return out;
  }
  return (x_axis ? plot.x_scale : plot.y_scale) == Scale::Log ? log_ticks(lo, hi) : linear_ticks(lo, hi);
}

// Clips segment a-b to the rectangle [x0,x1]x[y0,y1] (Liang-Barsky); false if nothing is inside.
bool clip_segment(std::pair<double, double>& a, std::pair<double, double>& b, double x0, double y0, double x1,
                  double y1) {
  const double dx = b.first - a.first, dy = b.second - a.second;
  double t0 = 0.0, t1 = 1.0;
  const double p[4] = {-dx, dx, -dy, dy};
  const double q[4] = {a.first - x0, x1 - a.first, a.second - y0, y1 - a.second};
  for (int i = 0; i < 4; ++i) {
    if (p[i] == 0.0) {
      if (q[i] < 0.0) return false;
      continue;
    }
    const double t = q[i] / p[i];
    if (p[i] < 0.0)
      t0 = std::max(t0, t);
    else
      t1 = std::min(t1, t);
    if (t0 > t1) return false;
  }
  const auto start = a;
  a = {start.first + t0 * dx, start.second + t0 * dy};
  b = {start.first + t1 * dx, start.second + t1 * dy};
  return true;
}

}  // namespace

Rgb palette_color(size_t index) {
  static const Rgb kPalette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                 {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
                                 {188, 189, 34},  {23, 190, 207}};
  return kPalette[index % (sizeof kPalette / sizeof kPalette[0])];
}

std::string format_tick(double v) {
  if (v == 0.0) return "0";
  char buf[40];
  const double a = std::abs(v);
  if (a >= 1e-3 && a < 1e5) {
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
  }
  int e = static_cast<int>(std::floor(std::log10(a)));
  double m = v / std::pow(10.0, e);
  if (std::abs(m) >= 9.995) {  // 9.999e4 rounds to 10e4
    m /= 10.0;
    ++e;
  }
  std::snprintf(buf, sizeof buf, "%.3ge%d", m, e);
  return buf;
}

std::vector<Tick> log_ticks(double lo, double hi) {
  require(lo > 0.0 && hi > lo && std::isfinite(hi), "log axis range [" + std::to_string(lo) + ", " +
                                                        std::to_string(hi) + "] must satisfy 0 < lo < hi");
  const int kmin = static_cast<int>(std::floor(std::log10(lo))) - 1;
  const int kmax = static_cast<int>(std::ceil(std::log10(hi))) + 1;
  const double decades = std::log10(hi / lo);
  auto inside = [&](double v) { return v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9); };
  auto multiples = [&](const std::vector<int>& ms) {
    std::vector<double> out;
    for (int k = kmin; k <= kmax; ++k)
      for (int m : ms) {
        const double v = m * std::pow(10.0, k);
        if (inside(v)) out.push_back(v);
      }
    return out;
  };
  const std::vector<std::vector<int>> levels = {{1}, {1, 2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}};
  std::vector<double> labelled;
  for (const auto& level : levels) {
    labelled = multiples(level);
    if (labelled.size() >= 3) break;
  }
  if (labelled.size() < 2) return linear_ticks(lo, hi);
  if (labelled.size() > 10) {  // many decades: label every n-th power of ten
    const size_t stride = (labelled.size() + 7) / 8;
    std::vector<double> kept;
    for (double v : labelled) {
      const long k = std::lround(std::log10(v));
      if (k % static_cast<long>(stride) == 0) kept.push_back(v);
    }
    labelled = kept;
  }
  std::vector<Tick> ticks;
  for (double v : labelled) ticks.push_back({v, format_tick(v)});
  if (decades <= 8.0) {
    for (double v : multiples({1, 2, 3, 4, 5, 6, 7, 8, 9})) {
      const bool is_labelled = std::any_of(labelled.begin(), labelled.end(),
                                           [&](double l) { return std::abs(l - v) <= 1e-9 * v; });
      if (!is_labelled) ticks.push_back({v, ""});
    }
  }
  std::sort(ticks.begin(), ticks.end(), [](const Tick& a, const Tick& b) { return a.value < b.value; });
  return ticks;
}

std::vector<Tick> linear_ticks(double lo, double hi) {
  require(hi > lo && std::isfinite(lo) && std::isfinite(hi),
          "linear axis range [" + std::to_string(lo) + ", " + std::to_string(hi) + "] must satisfy lo < hi");
  const double raw = (hi - lo) / 6.0;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10.0 * mag;
  for (double m : {1.0, 2.0, 5.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<Tick> ticks;
  for (double i = std::ceil(lo / step - 1e-9); i * step <= hi + 1e-9 * step; i += 1.0) {
    double v = i * step;
    if (std::abs(v) < 1e-12 * step) v = 0.0;
    ticks.push_back({v, format_tick(v)});
  }
  return ticks;
}

double AxisMap::operator()(double v) const {
  const double t = log ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo)) : (v - lo) / (hi - lo);
  return p0 + t * (p1 - p0);
}

namespace {
constexpr double kLegendPad = 8, kLegendRow = 18, kLegendSample = 28, kLegendGap = 10;
}  // namespace

PlotLayout layout(const Plot& plot, const Canvas& c, int width, int height) {
  require(width >= 200 && height >= 150, "plot '" + plot.title + "': size " + std::to_string(width) + "x" +
                                             std::to_string(height) + " is too small; use at least 200x150");
  PlotLayout L{};
  const double k = L.scale = height / 480.0;  // everything scales with the height
  const double label_size = 13 * k, tick_size = 11 * k, legend_size = 11 * k;
  const auto [xlo, xhi] = axis_range(plot, true);
  const auto [ylo, yhi] = axis_range(plot, false);
  L.x_ticks = axis_ticks(plot, true, xlo, xhi);
  L.y_ticks = axis_ticks(plot, false, ylo, yhi);

  for (size_t i = 0; i < plot.series.size(); ++i)
    if (!plot.series[i].name.empty()) L.legend_entries.push_back(i);
  if (plot.legend != LegendPosition::None && !L.legend_entries.empty()) {
    double text_w = 0.0;
    for (size_t i : L.legend_entries) text_w = std::max(text_w, c.text_width(plot.series[i].name, legend_size));
    L.legend_w = (2 * kLegendPad + kLegendSample + 6) * k + text_w;
    L.legend_h = (2 * kLegendPad - 4 + kLegendRow * L.legend_entries.size()) * k;
  }

  double ytick_w = 0.0;
  for (const auto& t : L.y_ticks) ytick_w = std::max(ytick_w, c.text_width(t.label, tick_size));
  const double left = 12 * k + label_size + 10 * k + ytick_w + 8 * k;
  double right = 24 * k;
  if (plot.legend == LegendPosition::OutsideRight && L.legend_w > 0)
    right = std::min(right + L.legend_w, width / 2.0);  // never more than half the figure
  const double top = (plot.title.empty() ? 16 : 44) * k + (plot.annotation.empty() ? 0 : 16 * k);
  const double bottom = 8 * k + tick_size + 12 * k + label_size + 14 * k;
  L.px0 = left;
  L.px1 = width - right;
  L.py0 = top;
  L.py1 = height - bottom;
  L.x = AxisMap{xlo, xhi, L.px0, L.px1, plot.x_scale == Scale::Log};
  L.y = AxisMap{ylo, yhi, L.py1, L.py0, plot.y_scale == Scale::Log};

  const double gap = kLegendGap * k;
  switch (plot.legend) {
    case LegendPosition::OutsideRight: L.legend_x = L.px1 + gap; L.legend_y = L.py0; break;
    case LegendPosition::TopRight: L.legend_x = L.px1 - gap - L.legend_w; L.legend_y = L.py0 + gap; break;
    case LegendPosition::TopLeft: L.legend_x = L.px0 + gap; L.legend_y = L.py0 + gap; break;
    case LegendPosition::BottomRight: L.legend_x = L.px1 - gap - L.legend_w; L.legend_y = L.py1 - gap - L.legend_h; break;
    case LegendPosition::BottomLeft: L.legend_x = L.px0 + gap; L.legend_y = L.py1 - gap - L.legend_h; break;
    case LegendPosition::None: break;
  }
  return L;
}

void render(const Plot& plot, Canvas& c, int width, int height) {
  const PlotLayout L = layout(plot, c, width, height);
  const double k = L.scale;
  const double title_size = 16 * k, label_size = 13 * k, tick_size = 11 * k, legend_size = 11 * k;
  const double px0 = L.px0, px1 = L.px1, py0 = L.py0, py1 = L.py1;
  const AxisMap& xm = L.x;
  const AxisMap& ym = L.y;
  const auto& xticks = L.x_ticks;
  const auto& yticks = L.y_ticks;

  c.rect(0, 0, width, height, kWhite, std::nullopt);
  // Grid.
  for (const auto& t : xticks) c.line(xm(t.value), py0, xm(t.value), py1, t.major() ? kGrid : kMinorGrid, 1);
  for (const auto& t : yticks) c.line(px0, ym(t.value), px1, ym(t.value), t.major() ? kGrid : kMinorGrid, 1);
  c.rect(px0, py0, px1 - px0, py1 - py0, std::nullopt, kBlack);
  // Ticks and their labels.
  const double major_len = 6 * k, minor_len = 3 * k;
  for (const auto& t : xticks) {
    const double x = xm(t.value), len = t.major() ? major_len : minor_len;
    c.line(x, py1, x, py1 - len, kBlack, 1);
    c.line(x, py0, x, py0 + len, kBlack, 1);
    if (t.major()) c.text(x, py1 + 8 * k + tick_size / 2, t.label, tick_size, Anchor::Middle, kText);
  }
  for (const auto& t : yticks) {
    const double y = ym(t.value), len = t.major() ? major_len : minor_len;
    c.line(px0, y, px0 + len, y, kBlack, 1);
    c.line(px1, y, px1 - len, y, kBlack, 1);
    if (t.major()) c.text(px0 - 8 * k, y, t.label, tick_size, Anchor::End, kText);
  }
  // Axis labels and title.
  if (!plot.x_label.empty())
    c.text((px0 + px1) / 2, height - 14 * k - label_size / 2, plot.x_label, label_size, Anchor::Middle, kText);
  if (!plot.y_label.empty())
    c.text(12 * k + label_size / 2, (py0 + py1) / 2, plot.y_label, label_size, Anchor::Middle, kText, true);
  if (!plot.title.empty()) c.text(width / 2.0, 22 * k, plot.title, title_size, Anchor::Middle, kBlack);
  if (!plot.annotation.empty())
    c.text(width / 2.0, (plot.title.empty() ? 14 : 42) * k, plot.annotation, legend_size, Anchor::Middle, kText);

  // Series: lines clipped to the plot area, then markers inside it.
  for (size_t i = 0; i < plot.series.size(); ++i) {
    const Series& s = plot.series[i];
    const Rgb color = s.style.color ? *s.style.color : palette_color(i);
    const double lw = s.style.line_width * k;
    std::vector<std::pair<double, double>> pix;
    for (const auto& p : s.points)
      if (visible(p.x, plot.x_scale) && visible(p.y, plot.y_scale)) pix.push_back({xm(p.x), ym(p.y)});
    c.begin_group(s.name.empty() ? "series " + std::to_string(i) : s.name);
    if (s.style.lines && pix.size() >= 2) {
      std::vector<std::pair<double, double>> run;
      for (size_t j = 1; j < pix.size(); ++j) {
        auto a = pix[j - 1], b = pix[j];
        if (!clip_segment(a, b, px0, py0, px1, py1)) continue;
        if (run.empty() || std::hypot(run.back().first - a.first, run.back().second - a.second) > 1e-6) {
          if (run.size() >= 2) c.polyline(run, color, lw, s.style.dashed);
          run = {a};
        }
        run.push_back(b);
      }
      if (run.size() >= 2) c.polyline(run, color, lw, s.style.dashed);
    }
    if (s.style.markers)
      for (const auto& [x, y] : pix)
        if (x >= px0 - 0.5 && x <= px1 + 0.5 && y >= py0 - 0.5 && y <= py1 + 0.5)
          c.circle(x, y, s.style.marker_radius * k, color);
    c.end_group();
  }

  // Legend.
  if (L.legend_w > 0) {
    const double pad = kLegendPad * k, row = kLegendRow * k, sample = kLegendSample * k;
    c.rect(L.legend_x, L.legend_y, L.legend_w, L.legend_h, kWhite, Rgb{170, 170, 170});
    for (size_t r = 0; r < L.legend_entries.size(); ++r) {
      const Series& s = plot.series[L.legend_entries[r]];
      const Rgb color = s.style.color ? *s.style.color : palette_color(L.legend_entries[r]);
      const double x = L.legend_x + pad, cy = L.legend_y + pad + row * r + row / 2 - 2 * k;
      if (s.style.lines) c.line(x, cy, x + sample, cy, color, s.style.line_width * k, s.style.dashed);
      if (s.style.markers) c.circle(x + sample / 2, cy, s.style.marker_radius * k, color);
      c.text(x + sample + 6 * k, cy, s.name, legend_size, Anchor::Start, kText);
    }
  }
}

std::string to_svg(const Plot& plot, int width, int height) {
  SvgCanvas canvas(width, height);
  render(plot, canvas, width, height);
  return canvas.str();
}

RasterCanvas rasterize(const Plot& plot, int width, int height) {
  RasterCanvas canvas(width, height);
  render(plot, canvas, width, height);
  return canvas;
}

void write_png(const Plot& plot, const std::string& path, int width, int height) {
  write_file_atomic(path, rasterize(plot, width, height).encode_png());
}

}  // namespace nfscale::report
