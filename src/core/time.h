/* Wall-clock time for epoch timings, progress bars and profiles. */
#ifndef CNN_CORE_TIME_H
#define CNN_CORE_TIME_H

/* Monotonic wall-clock seconds (unaffected by changes to the system clock). */
double cnn_now(void);

#endif
