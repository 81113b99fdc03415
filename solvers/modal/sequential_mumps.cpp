#include "sequential_mumps.hpp"

#include <dlfcn.h>

#include <mutex>
#include <string>

#include "vsense/kernels/errors.hpp"

namespace vsense::solvers::detail {

DmumpsEntry sequential_dmumps() {
  static std::once_flag once;
  static DmumpsEntry entry = nullptr;
  static std::string failure;
  std::call_once(once, [] {
    void* handle = dlopen(VSENSE_MUMPS_SEQ_LIBRARY, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!handle) {
      failure = std::string("sequential MUMPS (Debian libmumps-seq) could not be loaded: ") +
                dlerror();
      return;
    }
    entry = reinterpret_cast<DmumpsEntry>(dlsym(handle, "dmumps_c"));
    if (!entry) failure = std::string(VSENSE_MUMPS_SEQ_LIBRARY) + " lacks dmumps_c";
  });
  if (!entry) throw NotCompiled(failure);
  return entry;
}

}  // namespace vsense::solvers::detail
