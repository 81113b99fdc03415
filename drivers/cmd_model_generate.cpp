#include "commands.hpp"

namespace vsense::drivers {
void register_model_generate(CLI::App& model, CommonOptions& common) {
  (void)model;
  (void)common;
}
}  // namespace vsense::drivers
