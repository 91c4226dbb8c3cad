/* fuzz_fetch_policy: the header parsers of producers/fetch_policy.c (Link
 * rel="next", Retry-After as seconds or an HTTP date, epoch headers) and
 * the URL masker. Input: newline-separated Link, Retry-After,
 * X-Ratelimit-Retryafter and x-ratelimit-reset values. */
#include "fetch_policy.h"
#include "fuzz.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const uint8_t *rest, *rest2, *rest3, *end;
        size_t rest_size, rest2_size, rest3_size, end_size;
        char *link = fuzz_split(data, size, "\n", &rest, &rest_size);
        char *retry = fuzz_split(rest, rest_size, "\n", &rest2, &rest2_size);
        char *epoch = fuzz_split(rest2, rest2_size, "\n", &rest3, &rest3_size);
        char *reset = fuzz_split(rest3, rest3_size, "\n", &end, &end_size);
        static const char *const names[] = {"apiKey", "token"};
        int64_t ms;

        free(fetch_link_next(link));
        (void)fetch_throttle_wait_ms(retry, NULL, NULL, 1700000000000LL);
        (void)fetch_throttle_wait_ms(NULL, epoch, NULL, 1700000000000LL);
        (void)fetch_throttle_wait_ms(NULL, NULL, reset, 1700000000000LL);
        (void)fetch_throttle_wait_ms(retry, epoch, reset, 1700000000000LL);
        (void)fetch_time_parse(retry, &ms);
        free(fetch_url_mask(link, names, 2));
        free(link);
        free(retry);
        free(epoch);
        free(reset);
        return 0;
}
