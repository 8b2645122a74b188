"""Run singer-tools' `singer-check-tap` (same arguments), with one race in it fixed.

singer-check-tap 0.4.1 reads the tap's stdout in a thread (StdoutReader), waits for the tap
process to exit, and then uses the thread's result without joining the thread
(run_and_summarize). With a tap that exits a few milliseconds after its last line, the thread is
usually still validating and the result is None: the tool crashes with
"'NoneType' object has no attribute 'num_messages'" although the output was fine.

Here the reader's run() is done in the calling thread instead of a new one: the tap's stdout is
read and validated to the end before the tool waits for the tap's exit status. Nothing else
changes: same parsing (singer-python), same Draft 4 validation with format checks and the same
date-time check, same two runs (without state, then with the last STATE), same exit codes.
"""

import sys

from singertools import check_tap


def _read_in_calling_thread(self):
    self.run()


check_tap.StdoutReader.start = _read_in_calling_thread

if __name__ == "__main__":
    sys.argv[0] = "singer-check-tap"
    sys.exit(check_tap.main())
