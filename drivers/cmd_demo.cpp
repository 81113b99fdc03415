#include "commands.hpp"

namespace vsense::drivers {
void register_demo(CLI::App& app, CommonOptions& common) {
  (void)app;
  (void)common;
}
}  // namespace vsense::drivers
