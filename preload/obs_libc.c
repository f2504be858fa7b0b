/* obs_libc.c — the real libc functions under the ones libobserve exports:
 * found with dlsym(RTLD_NEXT) once, at start or at the first call that
 * needs one (another library's constructor may call before ours runs).
 * The bottom of the library: everything calls through REAL(), this calls
 * nothing of ours. */
#include "obs.h"

#include <dlfcn.h>

OBS_HIDDEN struct obs_libc obs_libc;

void obs_bind_libc(void)
{
#define OBS_X_BIND(name) obs_libc.name = (__typeof__(obs_libc.name))dlsym(RTLD_NEXT, #name);
    OBS_LIBC_SYMBOLS(OBS_X_BIND)
#undef OBS_X_BIND
}
