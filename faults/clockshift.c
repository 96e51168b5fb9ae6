/* clockshift: step the wall clock of one process, as NTP or an operator steps a real one.
 *
 * LD_PRELOAD'ed into the kiosk's processes by the fault suite (faults/environment.py). It adds
 * an offset, in seconds, read from the file named by CLOCKSHIFT_FILE (re-read at most every
 * 100 ms), to CLOCK_REALTIME as clock_gettime(), gettimeofday() and time() report it. The
 * monotonic clocks are left alone, as the kernel leaves them alone when the wall clock steps.
 *
 * Why not libfaketime: Debian's 0.9.10 breaks Python 3.11's time.sleep() when the monotonic
 * clock is excluded (clock_nanosleep with TIMER_ABSTIME gets a negative time: EINVAL, upstream
 * issue 426), and hangs threading waits when it is not excluded (sem_clockwait, issue 390).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime;
static _Atomic long long offset_ns;
static _Atomic long long next_check_ns;
static _Atomic int busy;

static void refresh(void) {
    struct timespec m;
    real_clock_gettime(CLOCK_MONOTONIC, &m);
    long long now = m.tv_sec * 1000000000LL + m.tv_nsec;
    if (now < atomic_load(&next_check_ns)) return;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&busy, &expected, 1)) return;
    atomic_store(&next_check_ns, now + 100000000LL);
    const char *path = getenv("CLOCKSHIFT_FILE");
    if (path != NULL) {
        FILE *f = fopen(path, "r");
        if (f != NULL) {
            double seconds;
            if (fscanf(f, "%lf", &seconds) == 1) atomic_store(&offset_ns, (long long)(seconds * 1e9));
            fclose(f);
        }
    }
    atomic_store(&busy, 0);
}

int clock_gettime(clockid_t clock, struct timespec *ts) {
    if (real_clock_gettime == NULL)
        real_clock_gettime = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    int result = real_clock_gettime(clock, ts);
    if (result == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) {
        refresh();
        long long t = ts->tv_sec * 1000000000LL + ts->tv_nsec + atomic_load(&offset_ns);
        ts->tv_sec = t / 1000000000LL;
        ts->tv_nsec = t % 1000000000LL;
    }
    return result;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    (void)tz;
    struct timespec ts;
    int result = clock_gettime(CLOCK_REALTIME, &ts);
    if (tv != NULL) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return result;
}

time_t time(time_t *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out != NULL) *out = ts.tv_sec;
    return ts.tv_sec;
}
