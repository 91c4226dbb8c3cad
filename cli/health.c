/* health.c: `sluice health URL`: the container health check. The runtime
 * image has no curl binary; this asks a worker's /healthz or /readyz and
 * turns the answer into an exit code. */
#include "roles.h"
#include "sl_metrics.h"
#include "sl_util.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

static void health_usage(FILE *fp)
{
        fprintf(fp,
                "usage: sluice health [--timeout SEC] URL\n\n"
                "GETs URL (a worker's /healthz or /readyz, e.g. "
                "http://127.0.0.1:9100/readyz)\nand prints the answer's "
                "first line.\n\n"
                "options:\n"
                "  --timeout SEC  give up after SEC seconds (default 3)\n"
                "  --metrics-reference  print every metric the workers "
                "export (Markdown)\n"
                "  -h, --help     this text\n\n"
                "exit codes: 0 the answer was 200, 1 any other answer or no "
                "answer,\n2 bad usage\n");
}

static size_t sink(char *p, size_t size, size_t n, void *opaque)
{
        struct sl_buf *b = opaque;

        sl_buf_append(b, p, size * n); /* capped: the rest is dropped */
        return size * n;
}

int health_main(int argc, char **argv)
{
        const char *url = NULL;
        struct sl_buf body;
        CURL *curl = NULL;
        CURLcode cc;
        long status = 0;
        int timeout = 3, rc = SL_EXIT_FAILURE;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "-h") == 0 ||
                    strcmp(argv[i], "--help") == 0) {
                        health_usage(stdout);
                        return SL_EXIT_OK;
                } else if (strcmp(argv[i], "--metrics-reference") == 0) {
                        sl_metrics_reference(stdout);
                        return SL_EXIT_OK;
                } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
                        if (sl_parse_int(argv[++i], &timeout) < 0 ||
                            timeout < 1) {
                                fprintf(stderr, "sluice health: --timeout "
                                                "wants seconds\n");
                                return SL_EXIT_USAGE;
                        }
                } else if (argv[i][0] == '-' || url) {
                        sl_usage_error("health", "unexpected argument \"%s\"",
                                       argv[i]);
                        return SL_EXIT_USAGE;
                } else {
                        url = argv[i];
                }
        }
        if (!url) {
                sl_usage_error("health", "expected a URL");
                return SL_EXIT_USAGE;
        }
        sl_buf_init(&body, 4096);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl = curl_easy_init();
        if (!curl)
                goto out;
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)timeout);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
        cc = curl_easy_perform(curl);
        if (cc != CURLE_OK) {
                fprintf(stderr, "sluice health: %s: %s\n", url,
                        curl_easy_strerror(cc));
                goto out;
        }
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        printf("%ld %.*s\n", status,
               (int)strcspn(body.data ? body.data : "", "\n"),
               body.data ? body.data : "");
        rc = status == 200 ? SL_EXIT_OK : SL_EXIT_FAILURE;
out:
        if (curl)
                curl_easy_cleanup(curl);
        curl_global_cleanup();
        sl_buf_free(&body);
        return rc;
}
