#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "support/server_process.h"

namespace disque::test {

// The fixture of integration tests that want one fresh server per test, started with
// --threads GetParam(). Instantiate with ::testing::Values(1, 4).
class ServerTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.threads = GetParam();
    server_ = std::make_unique<ServerProcess>(options);
    ASSERT_TRUE(server_->Start()) << server_->error();
  }

  int port() const { return server_->port(); }

  std::unique_ptr<ServerProcess> server_;
};

}  // namespace disque::test
