// Server-sent events as OpenAI streams them: each event one `data: <json>` line and a blank line,
// the stream ending with `data: [DONE]`.
#pragma once
#include <nlohmann/json.hpp>

#include <string>

namespace forma::serve {

// "data: {...}\n\n" (invalid UTF-8 in strings replaced, so one bad token cannot break a stream).
std::string sse_event(const nlohmann::json& data);
// "data: [DONE]\n\n".
std::string sse_done();

}  // namespace forma::serve
