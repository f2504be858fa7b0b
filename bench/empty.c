/* empty.c — a shared library with nothing in it: preloaded, it shows what
 * any LD_PRELOAD costs a process on this machine (the loader's work), the
 * floor under libobserve's own start-up cost (bench/run.sh). */
int obs_bench_empty;
