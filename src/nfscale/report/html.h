// html.h - a self-contained single-file HTML report: headings, paragraphs, tables, inline SVG figures.
#pragma once
#include <string>
#include <vector>

namespace nfscale::report {

// Escapes text for HTML (& < > " ').
std::string html_escape(const std::string& text);

class HtmlReport {
 public:
  explicit HtmlReport(std::string title);

  // <h1>..<h4>; level is clamped to 1..4. Text is escaped.
  void heading(const std::string& text, int level = 2);
  void paragraph(const std::string& text);
  void preformatted(const std::string& text);  // monospace block, e.g. a command line or a config
  // A table; every row must have header.size() cells (UserError otherwise). Numeric cells are right-aligned.
  void table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
             const std::string& caption = "");
  // An inline SVG figure (as produced by to_svg; its markers' <title>s show on hover) with a caption and,
  // optionally, links to PNG and PDF versions (paths relative to the report file).
  void figure(const std::string& svg, const std::string& caption, const std::string& png_href = "",
              const std::string& pdf_href = "");

  std::string html() const;
  // Writes html() atomically to `path`.
  void write(const std::string& path) const;

 private:
  std::string title_;
  std::string body_;
  int figures_ = 0, tables_ = 0;
};

}  // namespace nfscale::report
