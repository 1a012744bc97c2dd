#include "forma/serve/sse.h"

namespace forma::serve {

std::string sse_event(const nlohmann::json& data) {
  // dump() without indentation never writes a newline, which would end the event early.
  return "data: " + data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n";
}

std::string sse_done() { return "data: [DONE]\n\n"; }

}  // namespace forma::serve
