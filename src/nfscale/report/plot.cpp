// plot.cpp - axis ranges, plot layout, and rendering onto a canvas (SVG, PNG or PDF).
#include "nfscale/report/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>

#include "nfscale/report/svg_canvas.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"

namespace nfscale::report {
namespace {

constexpr Rgb kWhite{255, 255, 255};
constexpr Rgb kFrame{38, 38, 38};
constexpr Rgb kGrid{222, 222, 222};
constexpr Rgb kMinorGrid{241, 241, 241};
constexpr Rgb kText{38, 38, 38};
constexpr Rgb kReference{90, 90, 90};
constexpr Rgb kLegendEdge{204, 204, 204};
constexpr double kLineHeight = 1.17;  // line box of DejaVu Sans in units of the font size

// Font sizes and spacings in pixels at a height of 480 (scaled by height / 480).
struct Sizes {
  double title, annotation, label, tick, legend, major_len, minor_len, frame_w, pad;
  explicit Sizes(double k)
      : title(15 * k), annotation(11.5 * k), label(13 * k), tick(11.5 * k), legend(11.5 * k), major_len(5 * k),
        minor_len(2.8 * k), frame_w(1.0 * k), pad(4 * k) {}
};

bool visible(double v, Scale s) { return std::isfinite(v) && (s == Scale::Linear || v > 0.0); }
bool has_interval(const Point& p) { return p.y_lo && p.y_hi; }

// Data range of one axis (points, their intervals, reference lines), padded by 5% (in log10 space on a log axis),
// unless overridden.
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
  auto take = [&](double v) {
    if (!visible(v, scale)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  };
  for (const auto& s : plot.series)
    for (const auto& p : s.points) {
      if (!visible(p.x, plot.x_scale) || !visible(p.y, plot.y_scale)) continue;
      take(x_axis ? p.x : p.y);
      if (!x_axis && has_interval(p)) {
        take(*p.y_lo);
        take(*p.y_hi);
      }
    }
  if (!x_axis)
    for (double r : plot.reference_y) take(r);
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

// Drops every other label (keeping powers of ten where there are any) until neighbouring labels are at least
// `gap` pixels apart; extent(t) is the label's size along the axis. Dropped labels become minor ticks.
void thin_labels(std::vector<Tick>& ticks, const AxisMap& map, double gap,
                 const std::function<double(const Tick&)>& extent) {
  for (int round = 0; round < 6; ++round) {
    std::vector<size_t> major;
    for (size_t i = 0; i < ticks.size(); ++i)
      if (ticks[i].major()) major.push_back(i);
    bool crowded = false;
    for (size_t j = 1; j < major.size(); ++j) {
      const Tick &a = ticks[major[j - 1]], &b = ticks[major[j]];
      crowded |= std::abs(map(b.value) - map(a.value)) < (extent(a) + extent(b)) / 2 + gap;
    }
    if (!crowded || major.size() <= 2) return;
    // Keep the parity that keeps the most powers of ten (for log axes: 1e13, 1e14 rather than 2e13, 5e13).
    size_t keep_parity = 0, best = 0;
    for (size_t parity : {size_t{0}, size_t{1}}) {
      size_t powers = 0;
      for (size_t j = parity; j < major.size(); j += 2) {
        const double l = std::log10(std::abs(ticks[major[j]].value));
        powers += std::abs(l - std::round(l)) < 1e-9;
      }
      if (powers > best) best = powers, keep_parity = parity;
    }
    for (size_t j = 0; j < major.size(); ++j)
      if (j % 2 != keep_parity) ticks[major[j]].label.clear();
  }
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

// Clips a polygon to the rectangle [x0,x1]x[y0,y1] (Sutherland-Hodgman, one edge at a time).
PixelPath clip_polygon(PixelPath poly, double x0, double y0, double x1, double y1) {
  // Each edge: inside(p) and the intersection of segment p-q with the edge line.
  for (int edge = 0; edge < 4 && !poly.empty(); ++edge) {
    const bool vertical = edge < 2;
    const double bound = edge == 0 ? x0 : edge == 1 ? x1 : edge == 2 ? y0 : y1;
    const bool keep_greater = edge == 0 || edge == 2;
    auto inside = [&](const std::pair<double, double>& p) {
      const double v = vertical ? p.first : p.second;
      return keep_greater ? v >= bound : v <= bound;
    };
    auto cross = [&](const std::pair<double, double>& p, const std::pair<double, double>& q) {
      const double pv = vertical ? p.first : p.second, qv = vertical ? q.first : q.second;
      const double t = (bound - pv) / (qv - pv);
      return std::make_pair(p.first + t * (q.first - p.first), p.second + t * (q.second - p.second));
    };
    PixelPath out;
    for (size_t i = 0; i < poly.size(); ++i) {
      const auto& cur = poly[i];
      const auto& prev = poly[(i + poly.size() - 1) % poly.size()];
      if (inside(cur)) {
        if (!inside(prev)) out.push_back(cross(prev, cur));
        out.push_back(cur);
      } else if (inside(prev)) {
        out.push_back(cross(prev, cur));
      }
    }
    poly = std::move(out);
  }
  return poly;
}

std::string default_tooltip(const Series& s, const Point& p) {
  std::string t = (s.name.empty() ? "" : s.name + ": ") + "x = " + format_tick(p.x) + ", y = " + format_tick(p.y);
  if (has_interval(p)) t += " [" + format_tick(*p.y_lo) + ", " + format_tick(*p.y_hi) + "]";
  return t;
}

Rgb series_color(const Plot& plot, size_t i) {
  return plot.series[i].style.color ? *plot.series[i].style.color : palette_color(i);
}

bool draws_band(const Series& s) {
  return s.style.interval == IntervalStyle::Band && std::any_of(s.points.begin(), s.points.end(), has_interval);
}

// The series' y-interval band as polygons in pixels (one per run of consecutive drawable intervals).
std::vector<PixelPath> band_polygons(const Plot& plot, const Series& s, const AxisMap& xm, const AxisMap& ym) {
  std::vector<PixelPath> out;
  PixelPath upper, lower;
  auto flush = [&]() {
    if (upper.size() >= 2) {
      PixelPath poly = upper;
      poly.insert(poly.end(), lower.rbegin(), lower.rend());
      out.push_back(std::move(poly));
    }
    upper.clear();
    lower.clear();
  };
  for (const auto& p : s.points) {
    if (!has_interval(p) || !visible(p.x, plot.x_scale) || !visible(*p.y_lo, plot.y_scale) ||
        !visible(*p.y_hi, plot.y_scale)) {
      flush();
      continue;
    }
    upper.push_back({xm(p.x), ym(*p.y_hi)});
    lower.push_back({xm(p.x), ym(*p.y_lo)});
  }
  flush();
  return out;
}

}  // namespace

Rgb palette_color(size_t index) {
  static const Rgb kPalette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                 {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
                                 {188, 189, 34},  {23, 190, 207}};
  return kPalette[index % (sizeof kPalette / sizeof kPalette[0])];
}

double AxisMap::operator()(double v) const {
  const double t = log ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo)) : (v - lo) / (hi - lo);
  return p0 + t * (p1 - p0);
}

PlotLayout layout(const Plot& plot, const Canvas& c, int width, int height) {
  require(width >= 200 && height >= 150, "plot '" + plot.title + "': size " + std::to_string(width) + "x" +
                                             std::to_string(height) + " is too small; use at least 200x150");
  PlotLayout L{};
  const double k = L.scale = height / 480.0;  // everything scales with the height
  const Sizes z(k);
  const auto [xlo, xhi] = axis_range(plot, true);
  const auto [ylo, yhi] = axis_range(plot, false);
  L.x_ticks = axis_ticks(plot, true, xlo, xhi);
  L.y_ticks = axis_ticks(plot, false, ylo, yhi);

  for (size_t i = 0; i < plot.series.size(); ++i)
    if (!plot.series[i].name.empty() && plot.series[i].style.in_legend) L.legend_entries.push_back(i);
  if (plot.legend != LegendPosition::None && !L.legend_entries.empty()) {
    double text_w = 0.0;
    for (size_t i : L.legend_entries) text_w = std::max(text_w, c.text_width(plot.series[i].name, z.legend));
    L.legend_w = 2 * z.pad + 2.4 * z.legend + 0.6 * z.legend + text_w + z.pad;
    L.legend_h = 2 * z.pad + 1.45 * z.legend * L.legend_entries.size();
  }

  double ytick_w = 0.0;
  for (const auto& t : L.y_ticks) ytick_w = std::max(ytick_w, c.text_width(t.label, z.tick));
  const double tick_h = kLineHeight * z.tick, label_h = kLineHeight * z.label;
  const double left = 8 * k + (plot.y_label.empty() ? 0 : label_h + 6 * k) + ytick_w + z.major_len + z.pad;
  double right = 16 * k;
  for (const auto& t : L.x_ticks)  // room for half of a label at the right edge
    if (t.major()) right = std::max(right, c.text_width(t.label, z.tick) / 2 + 6 * k);
  if (plot.legend == LegendPosition::OutsideRight && L.legend_w > 0)
    right = std::min(12 * k + L.legend_w + 8 * k, width / 2.0);  // never more than half the figure
  double top = 14 * k;
  if (!plot.title.empty()) top = 10 * k + kLineHeight * z.title + 8 * k;
  if (!plot.annotation.empty()) top += kLineHeight * z.annotation + 2 * k;
  const double bottom = z.major_len + z.pad + tick_h + (plot.x_label.empty() ? 0 : 5 * k + label_h) + 10 * k;
  L.px0 = left;
  L.px1 = width - right;
  L.py0 = top;
  L.py1 = height - bottom;
  require(L.px1 - L.px0 > 40 && L.py1 - L.py0 > 40,
          "plot '" + plot.title + "': " + std::to_string(width) + "x" + std::to_string(height) +
              " leaves no room for the plot area after labels and legend; make the figure larger");
  L.x = AxisMap{xlo, xhi, L.px0, L.px1, plot.x_scale == Scale::Log};
  L.y = AxisMap{ylo, yhi, L.py1, L.py0, plot.y_scale == Scale::Log};
  thin_labels(L.x_ticks, L.x, 8 * k, [&](const Tick& t) { return c.text_width(t.label, z.tick); });
  thin_labels(L.y_ticks, L.y, 4 * k, [&](const Tick&) { return tick_h; });

  const double gap = 10 * k;
  switch (plot.legend) {
    case LegendPosition::OutsideRight: L.legend_x = L.px1 + 12 * k; L.legend_y = L.py0; break;
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
  const Sizes z(k);
  const double px0 = L.px0, px1 = L.px1, py0 = L.py0, py1 = L.py1;
  const AxisMap& xm = L.x;
  const AxisMap& ym = L.y;
  // Thin axis-parallel lines on pixel centres stay crisp in the raster output.
  auto crisp = [&](double v) { return std::floor(v) + 0.5; };

  c.rect(0, 0, width, height, kWhite, std::nullopt);
  // Grid: faint minor lines under the major ones.
  for (bool major : {false, true}) {
    for (const auto& t : L.x_ticks)
      if (t.major() == major) c.line(crisp(xm(t.value)), py0, crisp(xm(t.value)), py1, major ? kGrid : kMinorGrid, k);
    for (const auto& t : L.y_ticks)
      if (t.major() == major) c.line(px0, crisp(ym(t.value)), px1, crisp(ym(t.value)), major ? kGrid : kMinorGrid, k);
  }
  for (double r : plot.reference_y)
    if (visible(r, plot.y_scale) && ym(r) >= py0 && ym(r) <= py1)
      c.line(px0, ym(r), px1, ym(r), kReference, 1.2 * k, true);

  // Markers inside the plot area (pixels, radius) with their labels (may be empty), placed after every series.
  struct PointLabel {
    double x, y, radius;
    std::string text;
  };
  std::vector<PointLabel> point_labels;
  // Series: bands first (under every line), then lines clipped to the plot area, error bars, markers inside it.
  for (size_t i = 0; i < plot.series.size(); ++i) {
    const Series& s = plot.series[i];
    if (!draws_band(s)) continue;
    for (const auto& poly : band_polygons(plot, s, xm, ym)) {
      const PixelPath clipped = clip_polygon(poly, px0, py0, px1, py1);
      if (clipped.size() >= 3) c.polygon(clipped, series_color(plot, i), s.style.band_opacity);
    }
  }
  for (size_t i = 0; i < plot.series.size(); ++i) {
    const Series& s = plot.series[i];
    const Rgb color = series_color(plot, i);
    const double lw = s.style.line_width * k, radius = s.style.marker_radius * k;
    std::vector<const Point*> shown;
    PixelPath pix;
    for (const auto& p : s.points)
      if (visible(p.x, plot.x_scale) && visible(p.y, plot.y_scale)) {
        shown.push_back(&p);
        pix.push_back({xm(p.x), ym(p.y)});
      }
    c.begin_group(s.name.empty() ? "series " + std::to_string(i + 1) : s.name);
    if (s.style.lines && pix.size() >= 2) {
      PixelPath run;
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
    if (s.style.interval == IntervalStyle::ErrorBars)
      for (const Point* p : shown) {
        if (!has_interval(*p) || !visible(*p->y_lo, plot.y_scale) || !visible(*p->y_hi, plot.y_scale)) continue;
        const double x = xm(p->x), cap = std::max(radius, 3 * k);
        auto a = std::make_pair(x, ym(*p->y_lo)), b = std::make_pair(x, ym(*p->y_hi));
        if (clip_segment(a, b, px0, py0, px1, py1)) c.line(a.first, a.second, b.first, b.second, color, 1.2 * k);
        for (double y : {ym(*p->y_lo), ym(*p->y_hi)})
          if (y >= py0 && y <= py1) c.line(x - cap, y, x + cap, y, color, 1.2 * k);
      }
    if (s.style.markers)
      for (size_t j = 0; j < pix.size(); ++j) {
        const auto [x, y] = pix[j];
        if (x >= px0 - 0.5 && x <= px1 + 0.5 && y >= py0 - 0.5 && y <= py1 + 0.5)
          c.marker(x, y, radius, color, shown[j]->tooltip.empty() ? default_tooltip(s, *shown[j]) : shown[j]->tooltip);
      }
    for (size_t j = 0; j < pix.size(); ++j) {
      const auto [x, y] = pix[j];
      if (x >= px0 - 0.5 && x <= px1 + 0.5 && y >= py0 - 0.5 && y <= py1 + 0.5)
        point_labels.push_back({x, y, radius, shown[j]->label});
    }
    c.end_group();
  }

  // Point labels: right of the marker, else left, above or below: the first place inside the plot area that
  // overlaps neither another marker nor a label already placed (the last resort is the right).
  {
    struct Box {
      double x0, y0, x1, y1;
      bool hits(const Box& o) const { return x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1; }
    };
    std::vector<Box> taken;
    for (const auto& m : point_labels) taken.push_back({m.x - m.radius, m.y - m.radius, m.x + m.radius, m.y + m.radius});
    const double text_h = kLineHeight * z.legend;
    for (const auto& m : point_labels) {
      if (m.text.empty()) continue;
      const double w = c.text_width(m.text, z.legend), gap = m.radius + 4 * k;
      struct Place {
        double tx, ty;
        Anchor anchor;
        Box box;
      };
      const Place places[] = {
          {m.x + gap, m.y, Anchor::Start, {m.x + gap, m.y - text_h / 2, m.x + gap + w, m.y + text_h / 2}},
          {m.x - gap, m.y, Anchor::End, {m.x - gap - w, m.y - text_h / 2, m.x - gap, m.y + text_h / 2}},
          {m.x, m.y - gap - text_h / 2, Anchor::Middle, {m.x - w / 2, m.y - gap - text_h, m.x + w / 2, m.y - gap}},
          {m.x, m.y + gap + text_h / 2, Anchor::Middle, {m.x - w / 2, m.y + gap, m.x + w / 2, m.y + gap + text_h}}};
      const Place* chosen = &places[0];
      for (const Place& pl : places) {
        const bool inside = pl.box.x0 >= px0 && pl.box.x1 <= px1 && pl.box.y0 >= py0 && pl.box.y1 <= py1;
        const Box own{m.x - m.radius, m.y - m.radius, m.x + m.radius, m.y + m.radius};
        bool clear = inside;
        for (const Box& t : taken)
          if (clear && t.hits(pl.box) && !(t.x0 == own.x0 && t.y0 == own.y0 && t.x1 == own.x1 && t.y1 == own.y1))
            clear = false;
        if (clear) {
          chosen = &pl;
          break;
        }
      }
      taken.push_back(chosen->box);
      c.text(chosen->tx, chosen->ty, m.text, z.legend, chosen->anchor, kText);
    }
  }

  // Frame, outward ticks and their labels.
  c.rect(px0, py0, px1 - px0, py1 - py0, std::nullopt, kFrame, z.frame_w);
  const double tick_h = kLineHeight * z.tick, label_h = kLineHeight * z.label;
  for (const auto& t : L.x_ticks) {
    const double x = crisp(xm(t.value)), len = t.major() ? z.major_len : z.minor_len;
    c.line(x, py1, x, py1 + len, kFrame, 0.9 * k);
    if (t.major()) c.text(x, py1 + z.major_len + z.pad + tick_h / 2, t.label, z.tick, Anchor::Middle, kText);
  }
  for (const auto& t : L.y_ticks) {
    const double y = crisp(ym(t.value)), len = t.major() ? z.major_len : z.minor_len;
    c.line(px0 - len, y, px0, y, kFrame, 0.9 * k);
    if (t.major()) c.text(px0 - z.major_len - z.pad, y, t.label, z.tick, Anchor::End, kText);
  }
  // Axis labels, title, annotation.
  if (!plot.x_label.empty())
    c.text((px0 + px1) / 2, py1 + z.major_len + z.pad + tick_h + 5 * k + label_h / 2, plot.x_label, z.label,
           Anchor::Middle, kText);
  if (!plot.y_label.empty())
    c.text(8 * k + label_h / 2, (py0 + py1) / 2, plot.y_label, z.label, Anchor::Middle, kText, true);
  const double title_h = kLineHeight * z.title;
  if (!plot.title.empty()) c.text((px0 + px1) / 2, 10 * k + title_h / 2, plot.title, z.title, Anchor::Middle, kText);
  if (!plot.annotation.empty()) {
    const double top = plot.title.empty() ? 6 * k : 10 * k + title_h + 2 * k;
    c.text((px0 + px1) / 2, top + kLineHeight * z.annotation / 2, plot.annotation, z.annotation, Anchor::Middle,
           Rgb{85, 85, 85});
  }

  // Legend: a sample of each series' line, band and marker, then its name.
  if (L.legend_w > 0) {
    const double row = 1.45 * z.legend, sample = 2.4 * z.legend;
    c.rect(L.legend_x, L.legend_y, L.legend_w, L.legend_h, kWhite, kLegendEdge, 0.8 * k);
    for (size_t r = 0; r < L.legend_entries.size(); ++r) {
      const size_t i = L.legend_entries[r];
      const Series& s = plot.series[i];
      const Rgb color = series_color(plot, i);
      const double x = L.legend_x + z.pad, cy = L.legend_y + z.pad + row * r + row / 2;
      if (draws_band(s))
        c.polygon({{x, cy - row / 3}, {x + sample, cy - row / 3}, {x + sample, cy + row / 3}, {x, cy + row / 3}}, color,
                  s.style.band_opacity);
      if (s.style.lines) c.line(x, cy, x + sample, cy, color, s.style.line_width * k, s.style.dashed);
      if (s.style.markers || s.style.legend_marker) c.marker(x + sample / 2, cy, s.style.marker_radius * k, color, "");
      c.text(x + sample + 0.6 * z.legend, cy, s.name, z.legend, Anchor::Start, kText);
    }
  }
}

std::string to_svg(const Plot& plot, int width, int height) {
  SvgCanvas canvas(width, height);
  render(plot, canvas, width, height);
  return canvas.str();
}

Image rasterize(const Plot& plot, int width, int height) {
  CairoCanvas canvas(CairoCanvas::Target::Image, width, height);
  render(plot, canvas, width, height);
  return canvas.pixels();
}

std::string encode_png(const Plot& plot, int width, int height) {
  CairoCanvas canvas(CairoCanvas::Target::Image, width, height);
  render(plot, canvas, width, height);
  return canvas.png();
}

std::string encode_pdf(const Plot& plot, int width, int height) {
  CairoCanvas canvas(CairoCanvas::Target::Pdf, width, height);
  render(plot, canvas, width, height);
  return canvas.finish_pdf();
}

void write_png(const Plot& plot, const std::string& path, int width, int height) {
  write_file_atomic(path, encode_png(plot, width, height));
}
void write_pdf(const Plot& plot, const std::string& path, int width, int height) {
  write_file_atomic(path, encode_pdf(plot, width, height));
}
void write_svg(const Plot& plot, const std::string& path, int width, int height) {
  write_file_atomic(path, to_svg(plot, width, height));
}

void write_figure(const Plot& plot, const std::string& stem, int width, int height, int png_scale) {
  require(png_scale >= 1 && png_scale <= 8, "figure '" + stem + "': png_scale " + std::to_string(png_scale) +
                                                " is out of range; use 1..8");
  write_svg(plot, stem + ".svg", width, height);
  write_pdf(plot, stem + ".pdf", width, height);
  write_png(plot, stem + ".png", width * png_scale, height * png_scale);
}

}  // namespace nfscale::report
