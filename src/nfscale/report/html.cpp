// html.cpp - the HTML report writer (escaping, simple CSS, inline SVG figures with hover titles).
#include "nfscale/report/html.h"

#include <algorithm>
#include <cstdlib>

#include "nfscale/report/svg_canvas.h"
#include "nfscale/util/atomic_file.h"
#include "nfscale/util/error.h"

namespace nfscale::report {
namespace {

constexpr const char* kCss = R"css(
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; color: #222; background: #fff;
       max-width: 1000px; margin: 2em auto; padding: 0 1.5em; line-height: 1.5; }
h1 { border-bottom: 2px solid #1f77b4; padding-bottom: .2em; }
h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
caption { caption-side: top; text-align: left; font-weight: bold; margin-bottom: .3em; }
th, td { border: 1px solid #ccc; padding: .3em .7em; }
th { background: #f0f4f8; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1.5em 0; }
figure svg { max-width: 100%; height: auto; border: 1px solid #eee; }
figure svg circle.pt:hover { stroke: #222; stroke-width: 2px; cursor: crosshair; }
figcaption { color: #555; font-size: 0.92em; }
pre { background: #f6f8fa; padding: .8em; overflow-x: auto; }
)css";

bool looks_numeric(const std::string& s) {
  if (s.empty()) return false;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return end && (*end == '\0' || *end == '%');
}

}  // namespace

std::string html_escape(const std::string& text) { return xml_escape(text); }

HtmlReport::HtmlReport(std::string title) : title_(std::move(title)) {}

void HtmlReport::heading(const std::string& text, int level) {
  const std::string l = std::to_string(std::clamp(level, 1, 4));
  body_ += "<h" + l + ">" + html_escape(text) + "</h" + l + ">\n";
}

void HtmlReport::paragraph(const std::string& text) { body_ += "<p>" + html_escape(text) + "</p>\n"; }

void HtmlReport::preformatted(const std::string& text) { body_ += "<pre>" + html_escape(text) + "</pre>\n"; }

void HtmlReport::table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                       const std::string& caption) {
  ++tables_;
  for (size_t r = 0; r < rows.size(); ++r)
    require(rows[r].size() == header.size(),
            "report table " + std::to_string(tables_) + (caption.empty() ? "" : " ('" + caption + "')") + ": row " +
                std::to_string(r + 1) + " has " + std::to_string(rows[r].size()) + " cells but the header has " +
                std::to_string(header.size()) + "; give every row one cell per column");
  body_ += "<table>\n";
  if (!caption.empty()) body_ += "<caption>" + html_escape(caption) + "</caption>\n";
  body_ += "<thead><tr>";
  for (const auto& h : header) body_ += "<th>" + html_escape(h) + "</th>";
  body_ += "</tr></thead>\n<tbody>\n";
  for (const auto& row : rows) {
    body_ += "<tr>";
    for (const auto& cell : row)
      body_ += (looks_numeric(cell) ? "<td class=\"num\">" : "<td>") + html_escape(cell) + "</td>";
    body_ += "</tr>\n";
  }
  body_ += "</tbody>\n</table>\n";
}

void HtmlReport::figure(const std::string& svg, const std::string& caption, const std::string& png_href,
                        const std::string& pdf_href) {
  ++figures_;
  const size_t start = svg.find("<svg");
  require(start != std::string::npos && svg.find("</svg>") != std::string::npos,
          "report figure " + std::to_string(figures_) + " ('" + caption +
              "'): not an SVG document (no <svg> element); pass the output of to_svg()");
  body_ += "<figure>\n" + svg.substr(start) + "<figcaption>Figure " + std::to_string(figures_) + ". " +
           html_escape(caption);
  std::vector<std::string> links;
  if (!png_href.empty()) links.push_back("<a href=\"" + html_escape(png_href) + "\">PNG</a>");
  if (!pdf_href.empty()) links.push_back("<a href=\"" + html_escape(pdf_href) + "\">PDF</a>");
  for (size_t i = 0; i < links.size(); ++i) body_ += (i ? ", " : " (") + links[i] + (i + 1 == links.size() ? ")" : "");
  body_ += "</figcaption>\n</figure>\n";
}

std::string HtmlReport::html() const {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + html_escape(title_) +
         "</title>\n<style>" + kCss + "</style>\n</head>\n<body>\n<h1>" + html_escape(title_) + "</h1>\n" + body_ +
         "</body>\n</html>\n";
}

void HtmlReport::write(const std::string& path) const { write_file_atomic(path, html()); }

}  // namespace nfscale::report
