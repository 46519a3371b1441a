#pragma once

#include <string_view>

// Reply and error texts clients see, spelled exactly as PROTOCOL.md gives them. Texts
// with a variable part are built next to their command with these as the fixed parts.
namespace disque::server::replies {

inline constexpr std::string_view kOk = "OK";
inline constexpr std::string_view kPong = "PONG";
inline constexpr std::string_view kSyntaxError = "ERR syntax error";
inline constexpr std::string_view kNoAuth = "NOAUTH Authentication required.";
inline constexpr std::string_view kNoPasswordSet = "ERR Client sent AUTH, but no password is set";
inline constexpr std::string_view kInvalidPassword = "ERR invalid password";
inline constexpr std::string_view kMaxClients = "ERR max number of clients reached";
// Redis's text for protected mode, with our name and directive.
inline constexpr std::string_view kProtectedMode =
    "DENIED Disque is running in protected mode because protected mode is enabled, no bind address was "
    "specified, no authentication password is requested to clients. In this mode connections are only "
    "accepted from the loopback interface. If you want to connect from external computers to Disque you "
    "may adopt one of the following solutions: 1) Just disable protected mode sending the command "
    "'CONFIG SET protected-mode no' from the loopback interface by connecting to Disque from the same host "
    "the server is running, however MAKE SURE Disque is not publicly accessible from internet if you do so. "
    "Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected "
    "mode by editing the Disque configuration file, and setting the protected mode option to 'no', and then "
    "restarting the server. 3) If you started the server manually just for testing, restart it with the "
    "'--protected-mode no' option. 4) Setup a bind address or an authentication password. NOTE: You only "
    "need to do one of the above things in order for the server to start accepting connections from the "
    "outside.";
inline constexpr std::string_view kUnknownCommandPrefix = "ERR unknown command '";
inline constexpr std::string_view kWrongArityPrefix = "ERR wrong number of arguments for '";
inline constexpr std::string_view kNoSuchClient = "ERR No such client";
inline constexpr std::string_view kClientNameChars =
    "ERR Client names cannot contain spaces, newlines or special characters.";
inline constexpr std::string_view kClientSyntax =
    "ERR Syntax error, try CLIENT (LIST | KILL ip:port | GETNAME | SETNAME connection-name)";
inline constexpr std::string_view kCommandSyntax = "ERR Unknown subcommand or wrong number of arguments.";
inline constexpr std::string_view kConfigSubcommand =
    "ERR CONFIG subcommand must be one of GET, SET, RESETSTAT, REWRITE";
inline constexpr std::string_view kConfigNoFile = "ERR The server is running without a config file";
inline constexpr std::string_view kShutdownFailed = "ERR Errors trying to SHUTDOWN. Check logs.";
inline constexpr std::string_view kTimeoutNotInteger = "ERR timeout is not an integer or out of range";
inline constexpr std::string_view kTimeoutNegative = "ERR timeout is negative";
inline constexpr std::string_view kBadId = "BADID Invalid Job ID format.";
inline constexpr std::string_view kRewriteStarted = "Background append only file rewriting started";
inline constexpr std::string_view kRewriteRunning = "ERR Background append only file rewriting already in progress";
inline constexpr std::string_view kMisconfPrefix = "MISCONF Errors writing to the AOF file: ";
inline constexpr std::string_view kLoading = "LOADING Disque is loading the dataset in memory";
inline constexpr std::string_view kLoadJobRefused = "ERR LOADJOB is a special command only processed from AOF";
inline constexpr std::string_view kInvalidCursor = "ERR invalid cursor or option name";
inline constexpr std::string_view kOom = "OOM command not allowed when used memory > 'maxmemory'.";
inline constexpr std::string_view kNotInteger = "ERR value is not an integer or out of range";

}  // namespace disque::server::replies
