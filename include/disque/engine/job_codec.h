#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "disque/common/status.h"
#include "disque/engine/job.h"

// The job serialization of PROTOCOL.md 8.5 (Disque's LOADJOB format). The cluster bus
// carries it in REPLJOB and YOURJOBS; the AOF stores it as LOADJOB's argument, which is
// what makes our AOF files readable by the real Disque binary and theirs by us.
//
// One record, all integers little-endian:
//
//   uint32    L            length of everything that follows (not counting these 4 bytes)
//   --- 68-byte fixed block ---
//   byte[40]  id           the job ID text
//   byte      state        low 4 bits: JobState; high 4 bits: gc_retry
//   byte      flags        JobFlag bits
//   uint16    repl
//   uint32    etime        absolute unix seconds in the AOF; remaining seconds + 1 on the bus
//   uint64    ctime
//   uint32    delay
//   uint32    retry
//   uint16    num_nacks
//   uint16    num_deliv
//   --- variable part ---
//   uint32    qlen,  byte[qlen] queue name
//   uint32    blen,  byte[blen] body
//   uint32    n,     n x byte[40] node IDs (nodes-delivered)
//
// The codec only moves bytes: what etime means, which flags to clear before sending and
// which node IDs to drop on load are the caller's business.
namespace disque::engine {

// A job in transit: every field of the serialization, with the node IDs as text.
struct JobRecord {
  std::string id;  // 40-character job ID
  JobState state = JobState::kActive;
  uint8_t gc_retry = 0;  // 0..15 (ignored on load by Disque, kept here)
  uint8_t flags = 0;     // JobFlag bits as serialized
  uint16_t repl = 1;
  uint32_t etime = 0;
  uint64_t ctime = 0;
  uint32_t delay = 0;
  uint32_t retry = 0;
  uint16_t nacks = 0;
  uint16_t additional_deliveries = 0;
  std::string queue;
  std::string body;
  std::vector<std::string> nodes;  // nodes-delivered, 40-hex node IDs

  bool operator==(const JobRecord&) const = default;
};

// Appends one serialized record to `out` (whatever `out` already holds is kept).
// Preconditions, asserted: `id` is 40 characters, `gc_retry` < 16, every node ID is 40
// characters and the record is under 4 GiB. Should a bug break one, the fixed-width fields
// are still written at their width, so the record stays well formed and the receiver
// rejects it for its content instead of misreading what follows.
void AppendJobRecord(const JobRecord& job, std::string& out);

// Parses one record at the start of `in`. On success `*consumed` (if not null) is the
// number of bytes used, 4 + L; bytes after the record are left alone, so a buffer of
// several records is read by calling again on the rest.
//
// Rejected: fewer than 4 + L bytes; L too small for the fixed block and the three
// counts; an ID failing IsValidJobIdFormat; a state above 3; a length or count that runs
// past L; a node ID that is not 40 lowercase hex characters; bytes left over inside L.
// The error message is a short reason ("truncated record", "bad job ID", ...).
Result<JobRecord> ParseJobRecord(std::string_view in, size_t* consumed = nullptr);

}  // namespace disque::engine
