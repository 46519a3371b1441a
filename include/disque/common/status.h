#pragma once

#include <cassert>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace disque {

// Error codes map one to one to the reply prefixes clients see (PROTOCOL.md 1.3).
enum class Code {
  kOk = 0,
  kErr,      // -ERR
  kBadId,    // -BADID
  kNoRepl,   // -NOREPL
  kMaxLen,   // -MAXLEN
  kPaused,   // -PAUSED
  kLeaving,  // -LEAVING
  kNoJob,    // -NOJOB
  kTooLate,  // -TOOLATE
  kOom,      // -OOM
  kNoAuth,   // -NOAUTH
  kLoading,  // -LOADING
  kMisconf,  // -MISCONF
};

// The reply prefix for a code, without the leading '-' ("ERR", "BADID", ...).
std::string_view CodePrefix(Code code);

// A code plus an optional message. The OK status holds no allocation, so returning it on
// the hot path is free; an error carries its text on the heap.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message)
      : code_(code), message_(code == Code::kOk ? nullptr : std::make_shared<const std::string>(std::move(message))) {}

  static Status Ok() { return {}; }
  static Status Error(std::string message) { return {Code::kErr, std::move(message)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  std::string_view message() const { return message_ ? std::string_view(*message_) : std::string_view(); }

 private:
  Code code_ = Code::kOk;
  std::shared_ptr<const std::string> message_;
};

// A value or an error Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).ok()); }  // NOLINT

  bool ok() const { return v_.index() == 0; }
  const T& value() const& { return std::get<0>(v_); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& operator*() const& { return value(); }
  const T* operator->() const { return &value(); }
  const Status& status() const { return std::get<1>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace disque
