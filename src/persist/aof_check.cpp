#include "disque/persist/aof_check.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "disque/engine/job_codec.h"
#include "disque/engine/job_id.h"
#include "disque/persist/aof_format.h"

namespace disque::persist {

Result<AofCheck> CheckAof(const std::string& path) {
  Result<AofReader> opened = AofReader::Open(path);
  if (!opened.ok()) return opened.status();
  AofReader reader = std::move(opened).value();
  AofCheck check;
  check.size = reader.size();
  while (true) {
    switch (reader.Next()) {
      case AofReader::Outcome::kRecord:
        if (reader.type() == RecordType::kDelJob) {
          if (!engine::IsValidJobIdFormat(reader.payload())) {
            check.verdict = AofCheck::Verdict::kCorrupt;
            check.valid = reader.offset();
            check.problem = "DELJOB with a bad job ID at offset " + std::to_string(reader.offset());
            return check;
          }
          ++check.deljobs;
        } else {
          Result<engine::JobRecord> job = engine::ParseJobRecord(reader.payload());
          if (!job.ok()) {
            check.verdict = AofCheck::Verdict::kCorrupt;
            check.valid = reader.offset();
            check.problem = "LOADJOB that does not decode at offset " + std::to_string(reader.offset()) + " (" +
                            std::string(job.status().message()) + ")";
            return check;
          }
          ++check.loadjobs;
        }
        break;
      case AofReader::Outcome::kEnd:
        check.valid = check.size;
        return check;
      case AofReader::Outcome::kTorn:
        check.verdict = AofCheck::Verdict::kTornTail;
        check.valid = reader.offset();
        check.problem = "torn tail at offset " + std::to_string(reader.offset()) + " (a write cut by a crash)";
        return check;
      case AofReader::Outcome::kCorrupt:
        check.verdict = AofCheck::Verdict::kCorrupt;
        check.valid = reader.offset();
        check.problem = "corruption at offset " + std::to_string(reader.offset()) + ": " + reader.error();
        return check;
    }
  }
}

int RunCheckAof(const std::string& path, bool fix) {
  Result<AofCheck> result = CheckAof(path);
  if (!result.ok()) {
    std::printf("Cannot open file %s: %s\n", path.c_str(), std::string(result.status().message()).c_str());
    return 1;
  }
  const AofCheck& c = *result;
  std::printf("AOF analyzed: size=%llu, ok_up_to=%llu, diff=%llu\n", static_cast<unsigned long long>(c.size),
              static_cast<unsigned long long>(c.valid), static_cast<unsigned long long>(c.size - c.valid));
  std::printf("Records: %llu LOADJOB, %llu DELJOB\n", static_cast<unsigned long long>(c.loadjobs),
              static_cast<unsigned long long>(c.deljobs));
  if (c.verdict == AofCheck::Verdict::kValid) {
    std::printf("AOF is valid\n");
    return 0;
  }
  std::printf("%s\n", c.problem.c_str());
  if (!fix) {
    std::printf("AOF is not valid. Use the --fix option to try fixing it.\n");
    return 1;
  }
  if (c.verdict == AofCheck::Verdict::kCorrupt) {
    std::printf("This will discard %llu bytes after the damage, valid records included.\n",
                static_cast<unsigned long long>(c.size - c.valid));
  }
  if (::truncate(path.c_str(), static_cast<off_t>(c.valid)) != 0) {
    std::printf("Failed to truncate AOF: %s\n", std::strerror(errno));
    return 1;
  }
  std::printf("Successfully truncated AOF to %llu bytes\n", static_cast<unsigned long long>(c.valid));
  return 0;
}

}  // namespace disque::persist
