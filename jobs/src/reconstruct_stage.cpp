// The reconstruction stage (work in progress: see reconstruct_stage.hpp for the contract).
#include "vsense/jobs/reconstruct_stage.hpp"

#include "vsense/kernels/errors.hpp"

namespace vsense::jobs {

ReconstructSummary run_reconstruct(const ReconstructRequest&, const cluster::Communicator&) {
  throw NotCompiled("vsense reconstruct is not implemented yet");
}

std::string to_json(const ReconstructSummary&) { return "{}"; }

}  // namespace vsense::jobs
