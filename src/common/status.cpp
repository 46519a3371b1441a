#include "disque/common/status.h"

namespace disque {

std::string_view CodePrefix(Code code) {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kErr: return "ERR";
    case Code::kBadId: return "BADID";
    case Code::kNoRepl: return "NOREPL";
    case Code::kMaxLen: return "MAXLEN";
    case Code::kPaused: return "PAUSED";
    case Code::kLeaving: return "LEAVING";
    case Code::kNoJob: return "NOJOB";
    case Code::kTooLate: return "TOOLATE";
    case Code::kOom: return "OOM";
    case Code::kNoAuth: return "NOAUTH";
    case Code::kLoading: return "LOADING";
    case Code::kMisconf: return "MISCONF";
  }
  return "ERR";
}

}  // namespace disque
