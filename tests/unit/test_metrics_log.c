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
        sl_info("event=probe n=42 what=%s api_key=abc123 stray words "
                "ratio=-0.5e3 zip=007 hex=0x1f q=\"12\" v=1.2.3",
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
        TAP_OK(json_is_integer(json_object_get(o, "n")) &&
                   json_integer_value(json_object_get(o, "n")) == 42,
               "json: n=42 is a number member");
        TAP_OK(json_is_real(json_object_get(o, "ratio")) &&
                   json_real_value(json_object_get(o, "ratio")) == -500.0,
               "json: ratio=-0.5e3 is a number");
        TAP_STR_EQ(json_string_value(json_object_get(o, "zip")), "007",
                   "json: 007 (a leading zero) stays a string");
        TAP_STR_EQ(json_string_value(json_object_get(o, "hex")), "0x1f",
                   "json: 0x1f stays a string");
        TAP_STR_EQ(json_string_value(json_object_get(o, "q")), "12",
                   "json: a quoted \"12\" stays a string");
        TAP_STR_EQ(json_string_value(json_object_get(o, "v")), "1.2.3",
                   "json: 1.2.3 stays a string");
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

        char errstr[256];
        setenv("SLUICE_LOG_LEVEL", "verbose", 1);
        setenv("SLUICE_LOG_FORMAT", "json", 1);
        TAP_OK(sl_log_env_check(errstr, sizeof(errstr)) < 0 &&
                   strstr(errstr, "SLUICE_LOG_LEVEL=\"verbose\""),
               "env: an unknown level is refused, by name (%s)", errstr);
        setenv("SLUICE_LOG_LEVEL", "Warning", 1);
        setenv("SLUICE_LOG_FORMAT", "yaml", 1);
        TAP_OK(sl_log_env_check(errstr, sizeof(errstr)) < 0 &&
                   strstr(errstr, "SLUICE_LOG_FORMAT=\"yaml\""),
               "env: an unknown format is refused, by name (%s)", errstr);
        setenv("SLUICE_LOG_FORMAT", "kv", 1);
        TAP_OK(sl_log_env_check(errstr, sizeof(errstr)) == 0,
               "env: Warning and kv are accepted");
        unsetenv("SLUICE_LOG_LEVEL");
        setenv("SLUICE_LOG_FORMAT", "", 1);
        TAP_OK(sl_log_env_check(errstr, sizeof(errstr)) == 0,
               "env: unset and empty are the defaults");
        return TAP_DONE();
}
