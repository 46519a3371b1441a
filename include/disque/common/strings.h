#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Small string utilities shared by the protocol, the configuration and the commands.
namespace disque {

// Parses a signed 64-bit decimal with strtoll semantics as Disque uses them for every
// numeric argument (PROTOCOL.md 1.4): optional sign, leading zeros allowed, no leading
// whitespace, no trailing characters, overflow rejected, and the empty string is 0 (QUIRK).
std::optional<int64_t> ParseInt64(std::string_view s);

// Parses a base-8 integer the same way (unixsocketperm).
std::optional<int64_t> ParseOctal(std::string_view s);

// Parses a memory amount with an optional unit (b, k, kb, m, mb, g, gb; case-insensitive)
// as in disque.conf (PROTOCOL.md 9.2). Negative values are allowed; callers check ranges.
std::optional<int64_t> ParseMemory(std::string_view s);

// Parses yes/no, case-insensitively.
std::optional<bool> ParseYesNo(std::string_view s);

// Splits a line into arguments the way Redis's sdssplitargs does: whitespace separates,
// "..." understands \n \r \t \b \a \\ \" \xHH, '...' is literal (with \' allowed), and a
// closing quote must be followed by whitespace or the end. Returns nullopt for
// unbalanced quotes. Empty arguments ("") are kept; callers that drop them do so.
std::optional<std::vector<std::string>> SplitArgs(std::string_view line);

// Appends s quoted and escaped as Redis's sdscatrepr does ("a\nb" -> "\"a\\nb\"").
void AppendQuoted(std::string& out, std::string_view s);

// Redis glob match (*, ?, [...] with ranges and ^ negation, \ escapes).
bool GlobMatch(std::string_view pattern, std::string_view s, bool nocase = false);

// s without leading and trailing spaces, tabs, CRs and LFs (config file lines).
std::string_view Trim(std::string_view s);

bool EqualsIgnoreCase(std::string_view a, std::string_view b);
// The longest password (requirepass, AUTH): Disque's CONFIG_AUTHPASS_MAX_LEN.
inline constexpr size_t kMaxPasswordLen = 512;
// Password comparison (AUTH): every byte of a kMaxPasswordLen window is compared
// whatever the contents, so the time taken does not tell how much of a guess was right
// (Redis's time_independent_strcmp). Longer strings never match.
bool SecretEquals(std::string_view given, std::string_view secret);
void ToLowerInPlace(std::string& s);
std::string ToLower(std::string_view s);

// 1024-based human size with two decimals, as INFO's used_memory_human ("757.02K").
std::string HumanBytes(uint64_t bytes);

// n random lowercase hex characters from a non-deterministic source.
std::string RandomHex(size_t n);

}  // namespace disque
