/* test_metrics_log: the log line formats operators parse: JSON mode turns
 * each key=value into a member (quoted values unescaped), keeps role and
 * instance, collects free words, and both modes redact secret-looking
 * keys. */
#include "sl_log.h"
#include "sl_util.h"
#include "tap.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Logs through sl_log into a file and returns what was written (new). */
static char *capture(const char *format, const char *value)
{
        char path[] = "/tmp/sluice-test-log.XXXXXX";
        int fd = mkstemp(path), saved = dup(STDERR_FILENO);
        char q[256];
        char *text;

        setenv("SLUICE_LOG_FORMAT", format, 1);
        setenv("SLUICE_INSTANCE", "unit-1", 1);
        sl_log_init("ops");
        fflush(stderr);
        dup2(fd, STDERR_FILENO);
        sl_info("event=probe n=42 what=%s api_key=abc123 stray words",
                sl_log_quote(value, q, sizeof(q)));
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        close(fd);
        text = sl_file_read(path, NULL, NULL, 0);
        unlink(path);
        return text;
}

int main(void)
{
        char *kv = capture("kv", "say \"hi\"\\now");
        char *js = capture("json", "say \"hi\"\\now");
        json_error_t err;
        json_t *o = js ? json_loads(js, 0, &err) : NULL;

        TAP_OK(kv && strstr(kv, "role=ops instance=unit-1 event=probe n=42"),
               "kv: role and instance lead the fields");
        TAP_OK(kv && strstr(kv, "what=\"say \\\"hi\\\"\\\\now\""),
               "kv: a quoted value is kept as written");
        TAP_OK(kv && strstr(kv, "api_key=***") && !strstr(kv, "abc123"),
               "kv: a secret-looking key is redacted");
        TAP_OK(o != NULL, "json: the line parses (%s)", o ? "" : err.text);
        TAP_STR_EQ(json_string_value(json_object_get(o, "role")), "ops",
                   "json: role");
        TAP_STR_EQ(json_string_value(json_object_get(o, "instance")), "unit-1",
                   "json: instance");
        TAP_STR_EQ(json_string_value(json_object_get(o, "level")), "info",
                   "json: level");
        TAP_STR_EQ(json_string_value(json_object_get(o, "event")), "probe",
                   "json: event=probe is a member");
        TAP_STR_EQ(json_string_value(json_object_get(o, "n")), "42",
                   "json: n=42 is a member");
        TAP_STR_EQ(json_string_value(json_object_get(o, "what")),
                   "say \"hi\"\\now", "json: a quoted value is unescaped");
        TAP_STR_EQ(json_string_value(json_object_get(o, "api_key")), "***",
                   "json: a secret-looking key is redacted");
        TAP_STR_EQ(json_string_value(json_object_get(o, "text")), "stray words",
                   "json: free words are kept in text");
        TAP_OK(js && !strstr(js, "abc123"), "json: the secret is nowhere");
        json_decref(o);
        free(kv);
        free(js);
        return TAP_DONE();
}
