// `vsense demo` and its report: the demo finishes (saying which stages this build lacks) and
// prints where the report is; the page, opened in headless Chromium, shows every plot it
// references (no broken image); without matplotlib the page is written without images and
// says why; a second demo skips what is unchanged. The full-size demo is a Slow test.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>

#include "common/test_support.hpp"

namespace {

namespace fs = std::filesystem;
using vsense::test::run_command;
using vsense::test::run_vsense;
using vsense::test::ScratchDir;

std::string slurp(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// "<number of images> <number loaded with a natural width>" of a page in headless Chromium,
/// or "" when Chromium is not installed (sets `why`).
std::string images_in_chromium(const fs::path& page, const ScratchDir& scratch, std::string& why) {
  std::string browser;
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    if (run_command(fmt::format("command -v {} >/dev/null 2>&1", name)).exit_code == 0) {
      browser = name;
      break;
    }
  }
  if (browser.empty()) {
    why = "no headless Chromium here (Debian: apt-get install chromium)";
    return "";
  }
  // A copy of the page that records, once everything has loaded, how many images it has and
  // how many of them decoded to a real picture.
  const fs::path check = page.parent_path() / "check-images.html";
  std::ofstream(check) << slurp(page)
                       << "<script>window.addEventListener('load', () => { const i = "
                          "Array.from(document.images); document.body.setAttribute("
                          "'data-images', i.length + ' ' + i.filter(x => x.complete && "
                          "x.naturalWidth > 0).length); });</script>\n";
  const auto r = run_command(fmt::format(
      "timeout 120 {} --headless --no-sandbox --disable-gpu --allow-file-access-from-files "
      "--user-data-dir='{}' --virtual-time-budget=10000 --dump-dom 'file://{}'",
      browser, scratch.file("chromium-profile"), check.string()));
  fs::remove(check);
  const std::regex attribute("data-images=\"([0-9]+ [0-9]+)\"");
  std::smatch match;
  if (r.exit_code != 0 || !std::regex_search(r.out, match, attribute)) {
    ADD_FAILURE() << "Chromium did not render the page (exit " << r.exit_code << ")\n"
                  << r.err.substr(0, 2000);
    return "";
  }
  return match[1];
}

class Demo : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<ScratchDir>("demo");
    const auto r = run_vsense(fmt::format("demo {} --out-dir '{}' --json", small_demo,
                                          dir_->file("demo")));
    exit_code_ = r.exit_code;
    out_ = r.out;
    err_ = r.err;
  }
  static void TearDownTestSuite() { dir_.reset(); }
  static fs::path demo() { return dir_->path() / "demo"; }
  static constexpr const char* small_demo =
      "--dofs 10000 --modes 10 --sensors 5 --duration 30 --sample-rate 250";
  static std::unique_ptr<ScratchDir> dir_;
  static int exit_code_;
  static std::string out_, err_;
};
std::unique_ptr<ScratchDir> Demo::dir_;
int Demo::exit_code_ = -1;
std::string Demo::out_, Demo::err_;

TEST_F(Demo, FinishesAndSaysWhereTheReportIs) {
  ASSERT_EQ(exit_code_, 0) << err_;
  const std::string index = (demo() / "report" / "index.html").string();
  EXPECT_NE(err_.find("report:   " + index), std::string::npos) << err_;
  EXPECT_TRUE(fs::exists(index));
  EXPECT_TRUE(fs::exists(demo() / "demo-job.toml"));
  EXPECT_TRUE(fs::exists(demo() / "modes.xdmf"));
  EXPECT_TRUE(fs::exists(demo() / "placement-comparison" / "place_bench.md"));
  EXPECT_TRUE(fs::exists(demo() / "simulation" / "truth.h5"));
  // Every stage ran, or says that this build does not have it.
  for (const char* stage : {"model", "modes", "placement", "simulation", "report"}) {
    EXPECT_NE(out_.find(fmt::format("{{\"name\":\"{}\",\"status\":\"ran\"", stage)),
              std::string::npos)
        << stage << "\n" << out_;
  }
  const bool reconstructed =
      out_.find("{\"name\":\"reconstruction\",\"status\":\"ran\"") != std::string::npos;
  if (!reconstructed) {
    EXPECT_NE(out_.find("{\"name\":\"reconstruction\",\"status\":\"not available\""),
              std::string::npos)
        << out_;
    EXPECT_NE(err_.find("note: the reconstruction stage is not available in this build"),
              std::string::npos)
        << err_;
  } else {
    EXPECT_TRUE(fs::exists(demo() / "results.h5"));
  }
}

TEST_F(Demo, ReportShowsEveryPlotInHeadlessChromium) {
  ASSERT_EQ(exit_code_, 0) << err_;
  const fs::path index = demo() / "report" / "index.html";
  const std::string page = slurp(index);
  for (const char* plot : {"frequencies.png", "layout.png", "comparison.png", "stress_damage.png",
                           "stress_history.png"}) {
    EXPECT_NE(page.find(fmt::format("<img src=\"{}\"", plot)), std::string::npos) << plot;
  }
  // With a reconstruction, the estimate is plotted against the truth.
  const bool reconstructed = fs::exists(demo() / "results.h5");
  if (reconstructed) {
    EXPECT_NE(page.find("<img src=\"estimated_vs_true.png\""), std::string::npos);
  }
  std::string why;
  const std::string images = images_in_chromium(index, *dir_, why);
  if (images.empty() && !why.empty()) GTEST_SKIP() << why;
  int total = 0, loaded = 0;
  std::istringstream(images) >> total >> loaded;
  EXPECT_GE(total, reconstructed ? 6 : 5) << images;
  EXPECT_EQ(loaded, total) << "broken images in " << index;
}

TEST_F(Demo, WithoutMatplotlibTheReportHasNoImagesAndSaysWhy) {
  ASSERT_EQ(exit_code_, 0) << err_;
  const fs::path copy = dir_->path() / "no-plots";
  fs::copy(demo(), copy, fs::copy_options::recursive);
  const auto r = run_command(fmt::format(
      "VSENSE_PYTHON=/nonexistent/python3 '{}' run '{}' --output-dir '{}' --json", VSENSE_BINARY,
      (copy / "demo-job.toml").string(), copy.string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Only the report depends on whether plots can be drawn.
  EXPECT_NE(r.out.find("{\"name\":\"modes\",\"status\":\"skipped\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("{\"name\":\"report\",\"status\":\"ran\""), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("report without plots: /nonexistent/python3 with matplotlib was not found"),
            std::string::npos)
      << r.err;
  const std::string page = slurp(copy / "report" / "index.html");
  EXPECT_EQ(page.find("<img"), std::string::npos);
  EXPECT_NE(page.find("Plots not drawn"), std::string::npos);
  EXPECT_FALSE(fs::exists(copy / "report" / "layout.png")) << "a stale plot was kept";
}

TEST_F(Demo, SecondDemoSkipsWhatIsUnchanged) {
  ASSERT_EQ(exit_code_, 0) << err_;
  const auto r =
      run_vsense(fmt::format("demo {} --out-dir '{}' --json", small_demo, demo().string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* stage : {"model", "modes", "placement", "simulation", "report"}) {
    EXPECT_NE(r.out.find(fmt::format("{{\"name\":\"{}\",\"status\":\"skipped\"", stage)),
              std::string::npos)
        << stage << "\n" << r.out;
  }
}

// The demo as the README runs it (10^5 DOF, an hour of operation): minutes, so labelled slow.
TEST(DemoSlow, FullSizeDemoWritesAReportWithEveryPlot) {
  ScratchDir dir("demo-full");
  const auto r = run_vsense(fmt::format("demo --out-dir '{}' --json", dir.file("demo")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path index = dir.path() / "demo" / "report" / "index.html";
  ASSERT_TRUE(fs::exists(index));
  std::string why;
  const std::string images = images_in_chromium(index, dir, why);
  if (images.empty() && !why.empty()) GTEST_SKIP() << why;
  int total = 0, loaded = 0;
  std::istringstream(images) >> total >> loaded;
  EXPECT_GE(total, 5) << images;
  EXPECT_EQ(loaded, total);
}

}  // namespace
