/* test_map_bundled: every bundled map in transformers/maps/ against the real
 * pages in data/: exact row counts per table (computed independently from
 * the data) and spot-checked values. */
#include "map_check.h"
#include "sl_util.h"
#include "tap.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *root(void)
{
        const char *r = getenv("SLUICE_ROOT");
        return r ? r : ".";
}

/* Envelopes of out that upsert a row without a version: a table fed by
 * such a map ends as whichever row loads last (DESIGN: a table is a
 * function of the data, not of timing). */
static size_t unversioned(json_t *out, char *first, size_t first_size)
{
        size_t n = 0, i;
        json_t *v;

        json_array_foreach(out, i, v)
        {
                const char *op = json_string_value(json_object_get(v, "op"));
                if (!op || strcmp(op, "upsert") != 0 ||
                    json_object_get(v, "version"))
                        continue;
                if (n++ == 0)
                        snprintf(
                            first, first_size, "%s",
                            json_string_value(json_object_get(v, "table")));
        }
        return n;
}

/* Runs map on data; new array of outputs, NULL when either fails. */
static json_t *run(const char *map_rel, const char *data_rel, struct map **mp)
{
        char path[2048], err[512];
        char *errs = NULL, *text;
        size_t len = 0;
        struct map *m;
        json_t *out;

        snprintf(path, sizeof(path), "%s/%s", root(), map_rel);
        m = map_load(path, &errs);
        TAP_OK(m != NULL, "%s loads", map_rel);
        if (!m) {
                printf("# %s", errs ? errs : "");
                free(errs);
                return NULL;
        }
        snprintf(path, sizeof(path), "%s/%s", root(), data_rel);
        text = sl_file_read(path, &len, err, sizeof(err));
        TAP_OK(text != NULL, "%s reads", data_rel);
        if (!text) {
                map_destroy(m);
                return NULL;
        }
        {
                unsigned long before = map_sparse_pages;
                json_t *whole;
                out = map_check_run(m, text, len, NULL, NULL);
                TAP_OK(map_sparse_pages == before + 1,
                       "%s: records decoded one by one, not the whole page",
                       map_rel);
                map_sparse_off = 1;
                whole = map_check_run(m, text, len, NULL, NULL);
                map_sparse_off = 0;
                TAP_OK(json_equal(out, whole),
                       "%s: the same output as with the page decoded whole",
                       map_rel);
                json_decref(whole);
        }
        free(text);
        {
                char table[128] = "";
                size_t n = unversioned(out, table, sizeof(table));
                TAP_INT_EQ(n, 0,
                           "%s: every upsert carries a version (first "
                           "without: %s)",
                           map_rel, n ? table : "none");
        }
        *mp = m;
        return out;
}

/* Rows of table in outputs (upserts count 1, replaces their rows). */
static size_t rows_of(json_t *out, const char *table, size_t *envelopes)
{
        size_t n = 0, i;
        json_t *v;

        *envelopes = 0;
        json_array_foreach(out, i, v)
        {
                json_t *t = json_object_get(v, "table");
                if (json_object_get(v, "stage") || !json_is_string(t) ||
                    strcmp(json_string_value(t), table) != 0)
                        continue;
                (*envelopes)++;
                if (json_object_get(v, "rows"))
                        n += json_array_size(json_object_get(v, "rows"));
                else
                        n++;
        }
        return n;
}

static size_t dead_of(json_t *out)
{
        size_t n = 0, i;
        json_t *v;
        json_array_foreach(out, i, v)
        {
                if (json_object_get(v, "stage") || json_object_get(v, "note"))
                        n++;
        }
        return n;
}

/* The envelope of table whose key member col equals val (borrowed). */
static json_t *find(json_t *out, const char *table, const char *col,
                    const char *val)
{
        size_t i;
        json_t *v;
        json_array_foreach(out, i, v)
        {
                json_t *t = json_object_get(v, "table");
                json_t *k = json_object_get(json_object_get(v, "key"), col);
                if (json_is_string(t) &&
                    strcmp(json_string_value(t), table) == 0 &&
                    json_is_string(k) && strcmp(json_string_value(k), val) == 0)
                        return v;
        }
        return NULL;
}

static const char *row_str(json_t *env, const char *col)
{
        return json_string_value(
            json_object_get(json_object_get(env, "row"), col));
}

static char *child_list(json_t *env, const char *col)
{
        struct sl_buf b;
        size_t i;
        json_t *r;

        sl_buf_init(&b, 0);
        json_array_foreach(json_object_get(env, "rows"), i, r)
        {
                if (i)
                        sl_buf_puts(&b, ",");
                sl_buf_puts(&b, json_string_value(json_object_get(r, col)));
        }
        return sl_buf_steal(&b, NULL);
}

static void test_kev(void)
{
        struct map *m = NULL;
        json_t *out = run("transformers/maps/kev.json",
                          "data/kev/known_exploited_vulnerabilities.json", &m);
        json_t *e;
        size_t env = 0;
        char *cwes;

        if (!out)
                return;
        TAP_INT_EQ(rows_of(out, "known_exploited_vulnerability", &env), 1404,
                   "kev: 1404 rows");
        TAP_INT_EQ(rows_of(out, "known_exploited_vulnerability_cwe", &env),
                   1338, "kev: 1338 CWE rows");
        TAP_INT_EQ(env, 1404, "kev: one CWE replace per CVE");
        TAP_INT_EQ(dead_of(out), 0, "kev: no dead letters or notes");
        e = find(out, "known_exploited_vulnerability", "cve_id",
                 "CVE-2021-44228");
        TAP_OK(e != NULL, "kev: CVE-2021-44228 is mapped");
        if (e) {
                TAP_STR_EQ(row_str(e, "vendor_project"), "Apache",
                           "kev: Log4Shell vendor");
                TAP_STR_EQ(row_str(e, "product"), "Log4j2",
                           "kev: Log4Shell product");
                TAP_STR_EQ(row_str(e, "date_added"), "2021-12-10",
                           "kev: Log4Shell dateAdded");
                TAP_STR_EQ(row_str(e, "due_date"), "2021-12-24",
                           "kev: Log4Shell dueDate");
                TAP_STR_EQ(row_str(e, "known_ransomware_campaign_use"), "Known",
                           "kev: Log4Shell ransomware use");
                TAP_STR_EQ(row_str(e, "catalog_version"), "2025.08.25",
                           "kev: catalog version from the page");
        }
        e = find(out, "known_exploited_vulnerability_cwe", "cve_id",
                 "CVE-2021-44228");
        cwes = e ? child_list(e, "cwe_id") : NULL;
        /* data/kev lists three CWEs for it (not CWE-917) */
        TAP_STR_EQ(cwes, "CWE-20,CWE-400,CWE-502", "kev: Log4Shell CWEs");
        free(cwes);
        json_decref(out);
        map_destroy(m);
}

static void test_nvd(void)
{
        struct map *m = NULL;
        json_t *out = run("transformers/maps/nvd_cve.json",
                          "data/nvd/nvd_cves_combined_dedup.json", &m);
        json_t *e;
        size_t env = 0;

        if (!out)
                return;
        TAP_INT_EQ(rows_of(out, "vulnerability", &env), 476, "nvd: 476 CVEs");
        TAP_INT_EQ(rows_of(out, "vulnerability_reference", &env), 1054,
                   "nvd: 1054 distinct references");
        TAP_INT_EQ(env, 476, "nvd: one reference set per CVE");
        TAP_INT_EQ(rows_of(out, "vulnerability_weakness", &env), 527,
                   "nvd: 527 distinct weaknesses");
        TAP_INT_EQ(rows_of(out, "vulnerability_cpe_match", &env), 1727,
                   "nvd: 1727 distinct CPE matches");
        TAP_INT_EQ(dead_of(out), 0, "nvd: no dead letters or notes");
        /* only CVSS v2: still gets its score and severity */
        e = find(out, "vulnerability", "cve_id", "CVE-1999-0019");
        TAP_OK(e != NULL, "nvd: CVE-1999-0019 is mapped");
        if (e) {
                TAP_STR_EQ(row_str(e, "cvss_score"), "5", "nvd: v2 score");
                TAP_STR_EQ(row_str(e, "cvss_severity"), "MEDIUM",
                           "nvd: v2 severity");
                TAP_STR_EQ(row_str(e, "cvss_version"), "2.0",
                           "nvd: v2 version");
                TAP_STR_EQ(row_str(e, "published"), "1996-04-24T04:00:00.000Z",
                           "nvd: published UTC");
                TAP_STR_EQ(json_string_value(json_object_get(e, "version")),
                           "2008-09-09T12:33:32.460Z",
                           "nvd: version is lastModified");
        }
        /* v4.0 wins over v3.1 */
        e = find(out, "vulnerability", "cve_id", "CVE-2025-4565");
        TAP_STR_EQ(e ? row_str(e, "cvss_score") : NULL, "8.2",
                   "nvd: v4.0 score preferred");
        TAP_STR_EQ(e ? row_str(e, "cvss_version") : NULL, "4.0",
                   "nvd: v4.0 version");
        e = find(out, "vulnerability", "cve_id", "CVE-1999-0335");
        TAP_OK(e && json_is_null(json_object_get(json_object_get(e, "row"),
                                                 "cvss_score")),
               "nvd: a CVE without metrics has a null score");
        json_decref(out);
        map_destroy(m);
}

static void test_urlhaus(void)
{
        struct map *m = NULL;
        json_t *out = run("transformers/maps/urlhaus.json",
                          "data/urlhaus/urlhaus_recent_records.json", &m);
        json_t *e;
        size_t env = 0;

        if (!out)
                return;
        TAP_INT_EQ(rows_of(out, "threat_indicator", &env), 322,
                   "urlhaus: 322 indicators");
        TAP_INT_EQ(dead_of(out), 0, "urlhaus: no dead letters or notes");
        e = find(out, "threat_indicator", "indicator",
                 "http://221.14.13.237:45975/bin.sh");
        TAP_STR_EQ(e ? row_str(e, "external_id") : NULL, "3767243",
                   "urlhaus: id from the link");
        TAP_STR_EQ(e ? row_str(e, "first_seen") : NULL,
                   "2026-02-01T12:44:19.000Z", "urlhaus: dateadded in UTC");
        TAP_OK(e && json_array_size(json_object_get(json_object_get(e, "row"),
                                                    "tags")) == 4,
               "urlhaus: tags as text[]");
        json_decref(out);
        map_destroy(m);
}

static void test_tenable(void)
{
        struct map *m = NULL;
        json_t *out = run("transformers/maps/tenable.json",
                          "data/tenable/test_exports_vulns_chunk_1.json", &m);
        json_t *e;
        size_t env = 0;

        if (!out)
                return;
        TAP_INT_EQ(rows_of(out, "finding", &env), 344, "tenable: 344 findings");
        TAP_INT_EQ(rows_of(out, "asset", &env), 344,
                   "tenable: an asset upsert per finding");
        TAP_INT_EQ(dead_of(out), 0, "tenable: no dead letters or notes");
        e = find(out, "asset", "asset_uuid",
                 "2d520484-6b83-4c63-b3d0-bf094315cc0f");
        TAP_STR_EQ(e ? row_str(e, "bios_uuid") : NULL,
                   "02eb2642-6e94-23af-9c99-b61644c2cc46",
                   "tenable: bios uuid canonical");
        TAP_STR_EQ(e ? row_str(e, "mac_address") : NULL, "00:50:56:a6:55:8c",
                   "tenable: mac lower-cased");
        json_decref(out);
        map_destroy(m);
}

/* Every bundled map's top-level targets name a version: their rows can
 * arrive in several versions (pages, replays, parallel partitions), and
 * without one the table is whichever loaded last. Child sets carry their
 * parent's. */
static void test_all_maps_versioned(void)
{
        char path[2048];
        DIR *d;
        struct dirent *e;
        int n = 0;

        snprintf(path, sizeof(path), "%s/transformers/maps", root());
        d = opendir(path);
        TAP_OK(d != NULL, "transformers/maps opens");
        while (d && (e = readdir(d)) != NULL) {
                size_t len = strlen(e->d_name);
                char *errs = NULL;
                struct map *m;

                if (len < 5 || strcmp(e->d_name + len - 5, ".json") != 0)
                        continue;
                snprintf(path, sizeof(path), "%s/transformers/maps/%s", root(),
                         e->d_name);
                m = map_load(path, &errs);
                TAP_OK(m != NULL, "%s loads %s", e->d_name, errs ? errs : "");
                free(errs);
                for (size_t t = 0; m && t < m->ntargets; t++)
                        TAP_OK(m->targets[t].version != NULL,
                               "%s: target %s names a version", e->d_name,
                               m->targets[t].table);
                map_destroy(m);
                n++;
        }
        if (d)
                closedir(d);
        TAP_OK(n >= 4, "every bundled map looked at (%d)", n);
}

int main(void)
{
        test_all_maps_versioned();
        test_kev();
        test_nvd();
        test_urlhaus();
        test_tenable();
        return TAP_DONE();
}
