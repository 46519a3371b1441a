#pragma once

// Temporary directories and whole-file reads and writes, for unit and integration tests.
// Header-only, so unit tests use it without linking the integration support library.

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace disque::test {

// A temporary directory, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "disque-test-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = std::filesystem::canonical(tmpl).string();  // as getcwd() would report it
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A temporary directory that is the process's working directory for its lifetime (the
// config layer's `dir` chdirs the whole process; tests that load configs use this).
class TempCwd {
 public:
  TempCwd() : old_(std::filesystem::current_path()) { std::filesystem::current_path(dir_.path()); }
  ~TempCwd() {
    std::error_code ec;
    std::filesystem::current_path(old_, ec);
  }
  TempCwd(const TempCwd&) = delete;
  TempCwd& operator=(const TempCwd&) = delete;

  const std::string& path() const { return dir_.path(); }
  std::string File(const std::string& name) const { return dir_.File(name); }

 private:
  std::filesystem::path old_;
  TempDir dir_;  // destroyed after the cwd is restored
};

inline void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace disque::test
