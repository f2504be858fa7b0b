/* obs_libc.c — the real libc functions under the ones libobserve exports:
 * each found with dlsym(RTLD_NEXT) the first time it is called (which may
 * be before our constructor ran: another library's constructor may call).
 * The bottom of the library: everything calls through REAL(), this calls
 * nothing of ours. */
#include "obs.h"

#include <dlfcn.h>

OBS_HIDDEN struct obs_libc obs_libc;

/* Looks one function up.  Not at start for all of them: 62 lookups cost
 * about 20 us, which every process would pay, most for functions it never
 * calls.  A lookup made from a signal handler takes the loader's lock,
 * which is recursive, so a handler that interrupts a lookup on its own
 * thread goes on; two threads racing store the same address. */
void *obs_bind_libc(void **slot, const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    __atomic_store_n(slot, f, __ATOMIC_RELAXED);
    return f;
}
