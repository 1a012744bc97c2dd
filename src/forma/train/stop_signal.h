// SIGINT/SIGTERM during training: the handler only sets an atomic flag; the trainer checks it
// between steps, finishes the step in flight, saves a checkpoint and returns normally.
#pragma once

namespace forma::train {

void install_stop_handlers();   // SIGINT and SIGTERM
bool stop_requested();
int stop_signal_number();       // the signal received, 0 when none
void clear_stop_request();

}  // namespace forma::train
