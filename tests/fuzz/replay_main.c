/* replay_main.c: runs a fuzz target over files without libFuzzer, for the
 * regression corpus inside `make test`: each argument is a file or a
 * directory of files, each file one input. Prints the count. A crash is
 * the process dying (under the sanitizer build, any memory error). */
#include "fuzz.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int run_file(const char *path)
{
        FILE *fp = fopen(path, "rb");
        uint8_t *buf = NULL;
        size_t len = 0, cap = 0, n;
        uint8_t chunk[65536];

        if (!fp) {
                fprintf(stderr, "replay: could not open %s\n", path);
                return -1;
        }
        while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
                if (len + n > cap) {
                        cap = (len + n) * 2;
                        buf = realloc(buf, cap);
                        if (!buf)
                                abort();
                }
                memcpy(buf + len, chunk, n);
                len += n;
        }
        fclose(fp);
        /* an exact-size copy, so a read past the input is caught */
        {
                uint8_t *exact = malloc(len ? len : 1);
                if (!exact)
                        abort();
                if (len)
                        memcpy(exact, buf, len);
                LLVMFuzzerTestOneInput(exact, len);
                free(exact);
        }
        free(buf);
        return 0;
}

int main(int argc, char **argv)
{
        long files = 0, failed = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;
                DIR *dir;
                struct dirent *de;

                if (stat(argv[i], &st) != 0) {
                        fprintf(stderr, "replay: no such file %s\n", argv[i]);
                        failed++;
                        continue;
                }
                if (!S_ISDIR(st.st_mode)) {
                        failed += run_file(argv[i]) < 0;
                        files++;
                        continue;
                }
                dir = opendir(argv[i]);
                if (!dir) {
                        failed++;
                        continue;
                }
                for (de = readdir(dir); de; de = readdir(dir)) {
                        char path[4096];
                        if (de->d_name[0] == '.')
                                continue;
                        snprintf(path, sizeof(path), "%s/%s", argv[i],
                                 de->d_name);
                        failed += run_file(path) < 0;
                        files++;
                }
                closedir(dir);
        }
        printf("replayed %ld inputs, %ld unreadable\n", files, failed);
        return failed ? 1 : 0;
}
