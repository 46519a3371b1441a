#pragma once

#include <asio/awaitable.hpp>
#include <string>
#include <string_view>

namespace disque::server {

class Server;

// The text of INFO [section] (PROTOCOL.md 6.2), gathered from every shard. An unknown
// section gives an empty string.
asio::awaitable<std::string> GenerateInfo(Server& server, std::string_view section);

}  // namespace disque::server
