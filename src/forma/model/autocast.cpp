#include "forma/model/autocast.h"

#include <ATen/autocast_mode.h>

namespace forma {

AutocastState current_autocast(c10::DeviceType device_type) {
  return {at::autocast::is_autocast_enabled(device_type), device_type, at::autocast::get_autocast_dtype(device_type)};
}

AutocastScope::AutocastScope(const AutocastState& state) : previous_(current_autocast(state.device_type)) {
  at::autocast::set_autocast_enabled(state.device_type, state.enabled);
  at::autocast::set_autocast_dtype(state.device_type, state.dtype);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  at::autocast::set_autocast_enabled(previous_.device_type, previous_.enabled);
  at::autocast::set_autocast_dtype(previous_.device_type, previous_.dtype);
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
}

}  // namespace forma
