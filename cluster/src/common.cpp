// What the MPI and single-process builds share: failure agreement, partitions, launcher
// detection.
#include <cstdlib>
#include <cstring>
#include <new>

#include "communicator_impl.hpp"
#include "vsense/kernels/errors.hpp"

namespace vsense::cluster {

namespace {
thread_local bool agreed_failure = false;

/// An error of the class an exit code stands for (the classes of kernels/errors.hpp).
class ExitCodeError final : public Error {
public:
  ExitCodeError(int code, const std::string& message) : Error(message), code_(code) {}
  int exit_code() const noexcept override { return code_; }

private:
  int code_;
};

[[noreturn]] void throw_error(int code, const std::string& message) {
  switch (code) {
    case 2: throw InputError(message);
    case 3: throw IoError(message);
    case 4: throw NumericalError(message);
    case 5: throw NotCompiled(message);
    case 6: throw DeviceUnavailable(message);
    case 7: throw DeviceResourceError(message);
    default: throw ExitCodeError(code, message);
  }
}
}  // namespace

bool launched_by_mpi() noexcept {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE",
                           "MPI_LOCALNRANKS", "MV2_COMM_WORLD_SIZE"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  return false;
}

bool failure_was_agreed() noexcept { return agreed_failure; }

FailureRecord FailureRecord::of(std::exception_ptr failure) {
  FailureRecord record;
  if (!failure) return record;
  record.failed = true;
  try {
    std::rethrow_exception(failure);
  } catch (const Error& e) {
    record.exit_code = e.exit_code();
    record.message = e.what();
  } catch (const std::bad_alloc&) {
    record.exit_code = 8;
    record.message = "out of memory";
  } catch (const std::exception& e) {
    record.exit_code = 9;
    record.message = e.what();
  } catch (...) {
    record.exit_code = 9;
    record.message = "unknown error";
  }
  return record;
}

std::vector<std::byte> FailureRecord::encode() const {
  std::vector<std::byte> out(1 + sizeof(std::int32_t) + message.size());
  out[0] = std::byte{static_cast<unsigned char>(failed ? 1 : 0)};
  const std::int32_t code = exit_code;
  std::memcpy(out.data() + 1, &code, sizeof code);
  std::memcpy(out.data() + 1 + sizeof code, message.data(), message.size());
  return out;
}

FailureRecord FailureRecord::decode(std::span<const std::byte> bytes) {
  FailureRecord record;
  if (bytes.size() < 1 + sizeof(std::int32_t)) return record;
  record.failed = bytes[0] != std::byte{0};
  std::int32_t code = 0;
  std::memcpy(&code, bytes.data() + 1, sizeof code);
  record.exit_code = code;
  record.message.assign(reinterpret_cast<const char*>(bytes.data()) + 1 + sizeof code,
                        bytes.size() - 1 - sizeof code);
  return record;
}

void resolve_agreement(const std::vector<std::vector<std::byte>>& records, int rank,
                       std::exception_ptr local_failure) {
  agreed_failure = false;
  for (std::size_t r = 0; r < records.size(); ++r) {
    const FailureRecord record = FailureRecord::decode(records[r]);
    if (!record.failed) continue;
    agreed_failure = true;
    if (local_failure) std::rethrow_exception(local_failure);
    throw_error(record.exit_code, "rank " + std::to_string(r) + ": " + record.message);
  }
}

void Communicator::agree(std::exception_ptr local_failure) const {
  if (size_ == 1 && handle_ == nullptr) {
    agreed_failure = false;
    if (local_failure) std::rethrow_exception(local_failure);
    return;
  }
  const auto local = FailureRecord::of(local_failure).encode();
  resolve_agreement(allgather(local), rank_, local_failure);
}

void collectively(const Communicator& comm, const std::function<void()>& work) {
  std::exception_ptr failure;
  try {
    work();
  } catch (...) {
    failure = std::current_exception();
  }
  comm.agree(failure);
}

std::int64_t Partition::begin(int part) const noexcept {
  if (part <= 0 || parts <= 0) return 0;
  if (part >= parts) return n;
  const std::int64_t g = granule > 0 ? granule : 1;
  const std::int64_t units = (n + g - 1) / g;
  const std::int64_t first = (units * part) / parts;  // even split of whole granules
  const std::int64_t at = first * g;
  return at < n ? at : n;
}

}  // namespace vsense::cluster
