#pragma once
/// @file errors.hpp
/// @brief The vsense exception hierarchy. Every error a user can cause is an InputError that
/// names its place (file:line, dataset); internal failures are NumericalError, IoError, ...
#include <stdexcept>
#include <string>

namespace vsense {

/// Base of all vsense errors; `exit_code()` is the process exit status `main` returns.
class Error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
  virtual int exit_code() const noexcept { return 1; }
};

/// Bad input file or impossible request. The message carries file:line or the dataset.
class InputError : public Error {
public:
  using Error::Error;
  int exit_code() const noexcept override { return 2; }
};

/// A file could not be read or written (permissions, disk full, corrupt HDF5).
class IoError : public Error {
public:
  using Error::Error;
  int exit_code() const noexcept override { return 3; }
};

/// Factorisation failed, no convergence, or a correctness check did not pass.
class NumericalError : public Error {
public:
  using Error::Error;
  int exit_code() const noexcept override { return 4; }
};

/// A backend was requested that this build does not contain.
class NotCompiled : public Error {
public:
  using Error::Error;
  int exit_code() const noexcept override { return 5; }
};

/// The backend is compiled in but no usable device exists.
class DeviceUnavailable : public Error {
public:
  using Error::Error;
  int exit_code() const noexcept override { return 6; }
};

/// Out of device memory (told apart from a real failure so callers may fall back).
class DeviceResourceError : public Error {
public:
  using Error::Error;
  int exit_code() const noexcept override { return 7; }
};

}  // namespace vsense
