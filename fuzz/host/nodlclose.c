/* LD_PRELOAD shim for the valgrind pass of `make valgrind`: dlclose() does nothing.
 * Lua unloads C modules when its state is closed; valgrind could then neither name the
 * functions of an unloaded module in a report nor see the memory that libcurl and OpenSSL
 * keep, through their own globals, for the life of the process (it would be reported as
 * "definitely lost" once those globals are unmapped). Harmless in the programs the specs
 * start (sh, nginx): they inherit it and merely keep their libraries mapped. */
int dlclose(void *handle);
int dlclose(void *handle)
{
    (void)handle;
    return 0;
}
