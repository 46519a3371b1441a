#pragma once

#include <string_view>

#include "disque/engine/job_id.h"

namespace disque::engine {

// Where an engine reports what the append-only file must record (PROTOCOL.md 8.1).
// The engine says what happened; the persistence layer decides how it is stored.
// Calls come from the engine's thread, inside the engine operation that caused them.
class Journal {
 public:
  virtual ~Journal() = default;
  // A job became known here: created locally and active (immediately for a
  // non-synchronous ADDJOB, when replication is achieved otherwise), or a replica
  // registered from REPLJOB. `serialized` is its job_codec.h serialization in its
  // current state, with an absolute etime and every flag.
  virtual void LoadJob(std::string_view serialized) = 0;
  // A job became acked, or an active or queued job was removed (expiry, DELJOB,
  // FASTACK, eviction, flush, a peer's DELJOB).
  virtual void DelJob(const JobId& id) = 0;
};

}  // namespace disque::engine
