/* dlq.c: `sluice dlq list|replay`: reads the dead-letter topics, shows each
 * letter's reason and lineage, and re-publishes chosen letters to the
 * topic they came from once the map or table is fixed. Each re-published
 * letter is recorded in sluice.dlq_replayed (key "<dlq topic>:<P>:<O>"),
 * after its delivery, so a second replay skips it. */
#include "cli_opt.h"
#include "roles.h"
#include "sl_jsondump.h"
#include "sl_kafka.h"
#include "sl_log.h"
#include "sl_util.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLAYED_TOPIC "sluice.dlq_replayed"
#define MAX_OFFSETS    256

static const char *const dlq_topics[] = {"dlq.fetch", "dlq.transform",
                                         "dlq.load", NULL};

struct dlq_opts {
        const char *topics[8];
        int ntopics;
        const char *grep;
        const char *map;
        const char *table;
        int json;
        int all;
        int dry_run;
        struct {
                int32_t partition;
                int64_t offset;
        } offsets[MAX_OFFSETS];
        int noffsets;
};

/* One dead letter as read. */
struct letter {
        char *topic; /* dlq.<stage> */
        int32_t partition;
        int64_t offset;
        int64_t ts_ms;
        char *key; /* the Kafka key, or NULL */
        size_t key_len;
        char *value; /* NUL-terminated copy */
        json_t *dl;  /* parsed value, or NULL when not JSON */
        int replayed;
};

struct letters {
        struct letter *v;
        size_t n, cap;
};

static void dlq_usage(FILE *fp)
{
        fprintf(fp,
                "usage: sluice dlq list [--topic T]... [--grep TEXT] [--map M] "
                "[--table T] [--json]\n"
                "       sluice dlq replay --topic T (--offset P:O... | --all) "
                "[--grep TEXT]\n"
                "                         [--map M] [--table T] "
                "[--dry-run]\n\n"
                "list: prints the dead letters of dlq.fetch, dlq.transform "
                "and dlq.load (or\nthe --topic ones) with their reason, "
                "field, SQLSTATE and lineage, and whether\nthey were "
                "re-published already.\n\n"
                "replay: re-publishes the chosen dead letters of one topic "
                "to where they came\nfrom, once the map or the table is "
                "fixed:\n"
                "  dlq.load       the original mapped envelope (read back "
                "from mapped.<table>\n"
                "                 at the letter's offset, or the letter's "
                "record when it is a\n"
                "                 whole envelope) goes to mapped.<table> "
                "again;\n"
                "  dlq.transform  a page of the original page's shape "
                "holding only the dead\n"
                "                 record goes to raw.<source> with the "
                "original headers.\n"
                "Every re-published letter is recorded in "
                "sluice.dlq_replayed after its\ndelivery; a letter recorded "
                "there is never re-published again, so running\nreplay "
                "twice lands each fixed letter once.\n\n"
                "options:\n"
                "  --topic T         dlq.fetch, dlq.transform or dlq.load "
                "(list: repeatable)\n"
                "  --grep TEXT       only letters whose JSON contains TEXT\n"
                "  --map M           only letters of map M\n"
                "  --table T         only letters for table T\n"
                "  --json            list as a JSON array\n"
                "  --offset P:O      replay the letter at partition P, "
                "offset O (repeatable)\n"
                "  --all             replay every letter that passes the "
                "filters\n"
                "  --dry-run         say what would be re-published; "
                "publish nothing\n"
                "  --kafka prop=value  any librdkafka property\n"
                "  -h, --help        this text\n\n"
                "environment: SLUICE_BROKERS, SLUICE_KAFKA_<PROP>\n"
                "exit codes: 0 ok, 1 brokers unreachable or a letter could "
                "not be re-published,\n2 bad usage\n");
}

static void letters_free(struct letters *ls)
{
        for (size_t i = 0; i < ls->n; i++) {
                free(ls->v[i].topic);
                free(ls->v[i].key);
                free(ls->v[i].value);
                json_decref(ls->v[i].dl);
        }
        free(ls->v);
        memset(ls, 0, sizeof(*ls));
}

/* New consumer for reading by assignment (never joins or commits). */
static rd_kafka_t *reader_new(char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *conf =
            sl_kafka_conf_new("consumer", errstr, errstr_size);
        rd_kafka_t *rk;

        if (!conf)
                return NULL;
        if (sl_kafka_conf_set(conf, "enable.partition.eof", "true", errstr,
                              errstr_size) < 0) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        /* takes ownership of conf */
        rk =
            sl_kafka_consumer_new(conf, "sluice-dlq-tool", errstr, errstr_size);
        conf = NULL;
        return rk;
}

/* The partitions of topic (0 when the topic does not exist). -1 on a
 * metadata failure. Asks for every topic: naming one can create it. */
static int topic_partitions(rd_kafka_t *rk, const char *topic, char *errstr,
                            size_t errstr_size)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
        int n = 0;

        if (err) {
                snprintf(errstr, errstr_size, "metadata: %s",
                         rd_kafka_err2str(err));
                return -1;
        }
        for (int i = 0; i < md->topic_cnt; i++)
                if (strcmp(md->topics[i].topic, topic) == 0)
                        n = md->topics[i].partition_cnt;
        rd_kafka_metadata_destroy(md);
        return n;
}

typedef void (*each_fn)(const rd_kafka_message_t *rkm, void *opaque);

/* Reads topic from its low to its high watermarks, calling fn for each
 * message. 0, or -1 with errstr. */
static int read_topic(rd_kafka_t *rk, const char *topic, each_fn fn,
                      void *opaque, char *errstr, size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *l = NULL;
        int64_t *high = NULL;
        int nparts, left = 0, rc = -1;
        int64_t deadline;

        nparts = topic_partitions(rk, topic, errstr, errstr_size);
        if (nparts <= 0)
                return nparts;
        high = sl_calloc((size_t)nparts, sizeof(*high));
        l = rd_kafka_topic_partition_list_new(nparts);
        for (int p = 0; p < nparts; p++) {
                int64_t lo = 0, hi = 0;
                rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
                    rk, topic, p, &lo, &hi, 10000);
                if (err) {
                        snprintf(errstr, errstr_size, "%s [%d] watermarks: %s",
                                 topic, p, rd_kafka_err2str(err));
                        goto out;
                }
                high[p] = hi;
                if (hi > lo) {
                        rd_kafka_topic_partition_list_add(l, topic, p)->offset =
                            lo;
                        left++;
                }
        }
        if (left == 0) {
                rc = 0;
                goto out;
        }
        rd_kafka_assign(rk, l);
        deadline = sl_now_ms() + 60000;
        while (left > 0 && sl_now_ms() < deadline) {
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 200);
                if (!rkm)
                        continue;
                if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        if (rkm->partition >= 0 && rkm->partition < nparts &&
                            high[rkm->partition] >= 0) {
                                high[rkm->partition] = -1;
                                left--;
                        }
                } else if (!rkm->err && rkm->partition >= 0 &&
                           rkm->partition < nparts &&
                           high[rkm->partition] >= 0) {
                        fn(rkm, opaque);
                        if (rkm->offset + 1 >= high[rkm->partition]) {
                                high[rkm->partition] = -1;
                                left--;
                        }
                }
                rd_kafka_message_destroy(rkm);
        }
        rd_kafka_assign(rk, NULL);
        if (left > 0) {
                snprintf(errstr, errstr_size,
                         "%s: %d partitions not read to their end in 60 s",
                         topic, left);
                goto out;
        }
        rc = 0;
out:
        if (l)
                rd_kafka_topic_partition_list_destroy(l);
        free(high);
        return rc;
}

/* Reads the one message at topic/partition/offset. New; free with
 * rd_kafka_message_destroy(). NULL with errstr when it is gone. */
static rd_kafka_message_t *read_one(rd_kafka_t *rk, const char *topic,
                                    int32_t partition, int64_t offset,
                                    char *errstr, size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_message_t *found = NULL;
        int64_t lo = 0, hi = 0;
        int64_t deadline = sl_now_ms() + 15000;

        if (rd_kafka_query_watermark_offsets(rk, topic, partition, &lo, &hi,
                                             10000) ||
            offset < lo || offset >= hi) {
                snprintf(errstr, errstr_size,
                         "%s [%d] offset %lld is no longer in the topic "
                         "(retention)",
                         topic, (int)partition, (long long)offset);
                rd_kafka_topic_partition_list_destroy(l);
                return NULL;
        }
        rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
        rd_kafka_assign(rk, l);
        while (!found && sl_now_ms() < deadline) {
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 200);
                if (!rkm)
                        continue;
                if (!rkm->err && rkm->offset == offset &&
                    rkm->partition == partition)
                        found = rkm;
                else
                        rd_kafka_message_destroy(rkm);
        }
        rd_kafka_assign(rk, NULL);
        rd_kafka_topic_partition_list_destroy(l);
        if (!found)
                snprintf(errstr, errstr_size, "%s [%d] offset %lld: not read",
                         topic, (int)partition, (long long)offset);
        return found;
}

static void add_letter(const rd_kafka_message_t *rkm, void *opaque)
{
        struct letters *ls = opaque;
        struct letter *l;
        rd_kafka_timestamp_type_t tstype;

        if (ls->n == ls->cap) {
                ls->cap = ls->cap ? ls->cap * 2 : 64;
                ls->v = sl_realloc(ls->v, ls->cap * sizeof(*ls->v));
        }
        l = &ls->v[ls->n++];
        memset(l, 0, sizeof(*l));
        l->topic = sl_strdup(rd_kafka_topic_name(rkm->rkt));
        l->partition = rkm->partition;
        l->offset = rkm->offset;
        l->ts_ms = rd_kafka_message_timestamp(rkm, &tstype);
        if (rkm->key) {
                l->key = sl_strndup(rkm->key, rkm->key_len);
                l->key_len = rkm->key_len;
        }
        l->value = sl_strndup(rkm->payload ? rkm->payload : "", rkm->len);
        l->dl = json_loadb(l->value, rkm->len, 0, NULL);
}

static void add_replayed(const rd_kafka_message_t *rkm, void *opaque)
{
        json_t *set = opaque;
        char *k;

        if (!rkm->key)
                return;
        k = sl_strndup(rkm->key, rkm->key_len);
        json_object_set_new(set, k, json_true());
        free(k);
}

static void letter_id(const struct letter *l, char *buf, size_t size)
{
        snprintf(buf, size, "%s:%d:%lld", l->topic, (int)l->partition,
                 (long long)l->offset);
}

static const char *dl_str(json_t *dl, const char *name)
{
        return json_string_value(json_object_get(dl, name));
}

static int selected(const struct dlq_opts *o, const struct letter *l)
{
        const char *m = dl_str(l->dl, "map");

        if (!m)
                m = json_string_value(
                    json_object_get(json_object_get(l->dl, "lineage"), "map"));
        if (o->grep && !strstr(l->value, o->grep))
                return 0;
        if (o->map && (!m || strcmp(m, o->map) != 0))
                return 0;
        if (o->table && (!dl_str(l->dl, "table") ||
                         strcmp(dl_str(l->dl, "table"), o->table) != 0))
                return 0;
        if (o->noffsets) {
                for (int i = 0; i < o->noffsets; i++)
                        if (o->offsets[i].partition == l->partition &&
                            o->offsets[i].offset == l->offset)
                                return 1;
                return 0;
        }
        return 1;
}

/* Reads the chosen topics and the replayed set. 0 or -1 with errstr. */
static int read_all(rd_kafka_t *rk, const struct dlq_opts *o,
                    struct letters *ls, json_t *replayed, char *errstr,
                    size_t errstr_size)
{
        if (read_topic(rk, REPLAYED_TOPIC, add_replayed, replayed, errstr,
                       errstr_size) < 0)
                return -1;
        for (int t = 0; t < o->ntopics; t++)
                if (read_topic(rk, o->topics[t], add_letter, ls, errstr,
                               errstr_size) < 0)
                        return -1;
        for (size_t i = 0; i < ls->n; i++) {
                char id[256];
                letter_id(&ls->v[i], id, sizeof(id));
                ls->v[i].replayed = json_object_get(replayed, id) != NULL;
        }
        return 0;
}

static void print_letter(const struct letter *l)
{
        json_t *lin = json_object_get(l->dl, "lineage");
        char ts[40], q[1200];
        const char *names[] = {"stage", "map",      "table",
                               "field", "sqlstate", NULL};

        sl_time_format(l->ts_ms, ts, sizeof(ts));
        printf("%s %d:%lld %s%s", l->topic, (int)l->partition,
               (long long)l->offset, ts, l->replayed ? " replayed" : "");
        if (!l->dl) {
                printf(" not-json value=%s\n",
                       sl_log_quote(l->value, q, sizeof(q)));
                return;
        }
        for (int i = 0; names[i]; i++)
                if (dl_str(l->dl, names[i]))
                        printf(" %s=%s", names[i], dl_str(l->dl, names[i]));
        if (json_object_get(l->dl, "topic"))
                printf(" from=%s:%lld:%lld", dl_str(l->dl, "topic"),
                       (long long)json_integer_value(
                           json_object_get(l->dl, "partition")),
                       (long long)json_integer_value(
                           json_object_get(l->dl, "offset")));
        if (json_is_object(lin)) {
                const char *src = dl_str(lin, "source");
                const char *run = dl_str(lin, "run");
                const char *topic = dl_str(lin, "topic");
                if (src)
                        printf(" source=%s", src);
                if (run)
                        printf(" run=%s", run);
                if (topic)
                        printf(" raw=%s:%lld:%lld", topic,
                               (long long)json_integer_value(
                                   json_object_get(lin, "partition")),
                               (long long)json_integer_value(
                                   json_object_get(lin, "offset")));
                if (json_is_integer(json_object_get(lin, "record")))
                        printf(" record=%lld",
                               (long long)json_integer_value(
                                   json_object_get(lin, "record")));
        }
        printf(" error=%s\n",
               sl_log_quote(dl_str(l->dl, "error"), q, sizeof(q)));
}

static int do_list(rd_kafka_t *rk, const struct dlq_opts *o)
{
        struct letters ls = {0};
        json_t *replayed = json_object();
        json_t *arr = json_array();
        char errstr[512];
        size_t shown = 0, nrep = 0;
        int rc = SL_EXIT_FAILURE;

        if (read_all(rk, o, &ls, replayed, errstr, sizeof(errstr)) < 0) {
                fprintf(stderr, "sluice dlq: %s\n", errstr);
                goto out;
        }
        for (size_t i = 0; i < ls.n; i++) {
                struct letter *l = &ls.v[i];
                if (!selected(o, l))
                        continue;
                shown++;
                nrep += l->replayed;
                if (o->json) {
                        json_array_append_new(
                            arr,
                            json_pack("{s:s,s:i,s:I,s:I,s:b,s:O}", "topic",
                                      l->topic, "partition", (int)l->partition,
                                      "offset", (json_int_t)l->offset,
                                      "timestamp_ms", (json_int_t)l->ts_ms,
                                      "replayed", l->replayed, "letter",
                                      l->dl ? l->dl : json_null()));
                } else {
                        print_letter(l);
                }
        }
        if (o->json) {
                json_dumpf(arr, stdout, JSON_INDENT(2));
                printf("\n");
        } else {
                printf("# %zu dead letters, %zu already re-published\n", shown,
                       nrep);
        }
        rc = SL_EXIT_OK;
out:
        json_decref(arr);
        json_decref(replayed);
        letters_free(&ls);
        return rc;
}

/* Replaces the array at path ("$" or "$.a.b") in page with [record].
 * Returns the page (new reference) or NULL when the path is not there. */
static json_t *page_with(json_t *page, const char *path, json_t *record)
{
        json_t *one = json_array();
        json_t *copy, *cur;
        char *p, *save, *seg;

        json_array_append(one, record);
        if (!path || strcmp(path, "$") == 0)
                return one;
        if (!sl_str_has_prefix(path, "$.")) {
                json_decref(one);
                return NULL;
        }
        copy = json_deep_copy(page);
        cur = copy;
        p = sl_strdup(path + 2);
        save = p;
        for (;;) {
                char *dot = strchr(save, '.');
                seg = save;
                if (dot)
                        *dot = '\0';
                if (!json_is_object(cur) || !json_object_get(cur, seg)) {
                        json_decref(copy);
                        json_decref(one);
                        free(p);
                        return NULL;
                }
                if (!dot) {
                        json_object_set_new(cur, seg, one);
                        break;
                }
                cur = json_object_get(cur, seg);
                save = dot + 1;
        }
        free(p);
        return copy;
}

struct outmsg {
        char *topic;
        char *key;
        size_t key_len;
        char *value;
        rd_kafka_headers_t *hdrs; /* owned until produced */
        const struct letter *from;
        /* delivery report */
        int done;
        rd_kafka_resp_err_t err;
        int32_t partition;
        int64_t offset;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
        struct outmsg *m = rkm->_private;

        (void)rk;
        (void)opaque;
        if (!m)
                return;
        m->done = 1;
        m->err = rkm->err;
        m->partition = rkm->partition;
        m->offset = rkm->offset;
}

/* The message that puts a dlq.load letter back: its original envelope. */
static int build_load(rd_kafka_t *reader, const struct letter *l,
                      struct outmsg *m, char *errstr, size_t errstr_size)
{
        json_t *rec = json_object_get(l->dl, "record");
        const char *topic = dl_str(l->dl, "topic");
        const char *table = dl_str(l->dl, "table");
        rd_kafka_message_t *orig = NULL;

        if (json_object_get(l->dl, "page")) {
                snprintf(errstr, errstr_size,
                         "the message was not JSON: nothing to re-publish");
                return -1;
        }
        m->topic = topic ? sl_strdup(topic)
                         : (table ? sl_asprintf("mapped.%s", table) : NULL);
        if (!m->topic) {
                snprintf(errstr, errstr_size, "the letter names no table");
                return -1;
        }
        if (json_is_object(rec) && json_object_get(rec, "op") &&
            json_object_get(rec, "table")) {
                /* delete and replace letters carry the whole envelope;
                 * its reals keep their shortest form, as the transformer
                 * wrote them */
                m->value = sl_json_dumps(rec, 0, NULL);
        } else if (topic) {
                orig = read_one(
                    reader, topic,
                    (int32_t)json_integer_value(
                        json_object_get(l->dl, "partition")),
                    json_integer_value(json_object_get(l->dl, "offset")),
                    errstr, errstr_size);
                if (!orig)
                        return -1;
                m->value =
                    sl_strndup(orig->payload ? orig->payload : "", orig->len);
                if (orig->key) {
                        m->key = sl_strndup(orig->key, orig->key_len);
                        m->key_len = orig->key_len;
                }
                rd_kafka_message_destroy(orig);
        } else {
                snprintf(errstr, errstr_size,
                         "the letter has no envelope and no source offset");
                return -1;
        }
        if (!m->key && l->key) {
                m->key = sl_strndup(l->key, l->key_len);
                m->key_len = l->key_len;
        }
        m->hdrs = rd_kafka_headers_new(2);
        return 0;
}

/* The message that puts a dlq.transform letter back: a page of the
 * original page's shape holding only the dead record, original headers. */
static int build_transform(rd_kafka_t *reader, const struct letter *l,
                           struct outmsg *m, char *errstr, size_t errstr_size)
{
        json_t *lin = json_object_get(l->dl, "lineage");
        json_t *rec = json_object_get(l->dl, "record");
        const char *topic = dl_str(lin, "topic");
        rd_kafka_message_t *orig = NULL;
        rd_kafka_headers_t *oh = NULL;
        json_t *page = NULL, *one = NULL;
        char *rpath = NULL;
        int rc = -1;

        if (!rec) {
                snprintf(errstr, errstr_size, "%s",
                         json_object_get(l->dl, "page")
                             ? "a page that could not be decoded: "
                               "fetch it again"
                             : "the letter holds no record");
                return -1;
        }
        if (!topic) {
                snprintf(errstr, errstr_size,
                         "the letter has no lineage topic");
                return -1;
        }
        orig = read_one(
            reader, topic,
            (int32_t)json_integer_value(json_object_get(lin, "partition")),
            json_integer_value(json_object_get(lin, "offset")), errstr,
            errstr_size);
        if (!orig)
                return -1;
        rpath = sl_kafka_header_dup(orig, "records_path");
        page =
            json_loadb(orig->payload ? orig->payload : "", orig->len, 0, NULL);
        one = page_with(page, rpath ? rpath : "$", rec);
        if (!one) {
                snprintf(errstr, errstr_size,
                         "the original page has no records array at %s",
                         rpath ? rpath : "$");
                goto out;
        }
        m->topic = sl_strdup(topic);
        m->value = sl_json_dumps(one, 0, NULL); /* reals as the source's */
        if (orig->key) {
                m->key = sl_strndup(orig->key, orig->key_len);
                m->key_len = orig->key_len;
        }
        if (rd_kafka_message_headers(orig, &oh) == 0 && oh)
                m->hdrs = rd_kafka_headers_copy(oh);
        else
                m->hdrs = rd_kafka_headers_new(2);
        rc = 0;
out:
        json_decref(one);
        json_decref(page);
        free(rpath);
        rd_kafka_message_destroy(orig);
        return rc;
}

static int do_replay(rd_kafka_t *reader, const struct dlq_opts *o)
{
        struct letters ls = {0};
        json_t *replayed = json_object();
        struct outmsg *out = NULL;
        size_t nout = 0, skipped = 0, failed = 0, done = 0;
        rd_kafka_conf_t *conf = NULL;
        rd_kafka_t *rk = NULL;
        char errstr[512];
        int rc = SL_EXIT_FAILURE;

        if (read_all(reader, o, &ls, replayed, errstr, sizeof(errstr)) < 0) {
                fprintf(stderr, "sluice dlq: %s\n", errstr);
                goto out;
        }
        out = sl_calloc(ls.n + 1, sizeof(*out));
        for (size_t i = 0; i < ls.n; i++) {
                struct letter *l = &ls.v[i];
                struct outmsg *m = &out[nout];
                const char *stage = dl_str(l->dl, "stage");
                char id[256];
                int r;

                if (!selected(o, l))
                        continue;
                letter_id(l, id, sizeof(id));
                if (l->replayed) {
                        printf("skip %s: re-published already\n", id);
                        skipped++;
                        continue;
                }
                m->from = l;
                if (!l->dl) {
                        snprintf(errstr, sizeof(errstr), "not JSON");
                        r = -1;
                } else if (stage && strcmp(stage, "load") == 0) {
                        r = build_load(reader, l, m, errstr, sizeof(errstr));
                } else if (stage && strcmp(stage, "transform") == 0) {
                        r = build_transform(reader, l, m, errstr,
                                            sizeof(errstr));
                } else {
                        snprintf(errstr, sizeof(errstr),
                                 "stage %s letters are not re-publishable: "
                                 "run the fetch again",
                                 stage ? stage : "(none)");
                        r = -1;
                }
                if (r < 0) {
                        printf("fail %s: %s\n", id, errstr);
                        free(m->topic);
                        free(m->key);
                        free(m->value);
                        if (m->hdrs)
                                rd_kafka_headers_destroy(m->hdrs);
                        memset(m, 0, sizeof(*m));
                        failed++;
                        continue;
                }
                sl_kafka_header_add(m->hdrs, "sluice_dlq", id);
                nout++;
        }
        for (int k = 0; k < o->noffsets; k++) {
                size_t i;
                for (i = 0; i < ls.n; i++)
                        if (ls.v[i].partition == o->offsets[k].partition &&
                            ls.v[i].offset == o->offsets[k].offset)
                                break;
                if (i == ls.n) {
                        printf("fail %s:%d:%lld: no such dead letter\n",
                               o->topics[0], (int)o->offsets[k].partition,
                               (long long)o->offsets[k].offset);
                        failed++;
                }
        }
        if (o->dry_run) {
                for (size_t i = 0; i < nout; i++) {
                        char id[256];
                        letter_id(out[i].from, id, sizeof(id));
                        printf("would re-publish %s -> %s\n", id, out[i].topic);
                }
                rc = failed ? SL_EXIT_FAILURE : SL_EXIT_OK;
                goto out;
        }
        if (nout > 0) {
                conf = sl_kafka_conf_new("producer", errstr, sizeof(errstr));
                if (!conf) {
                        fprintf(stderr, "sluice dlq: %s\n", errstr);
                        goto out;
                }
                rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
                /* takes ownership of conf */
                rk = sl_kafka_producer_new(conf, errstr, sizeof(errstr));
                conf = NULL;
                if (!rk) {
                        fprintf(stderr, "sluice dlq: %s\n", errstr);
                        goto out;
                }
        }
        /* 1. the letters, all delivered before any is marked */
        for (size_t i = 0; i < nout; i++) {
                struct outmsg *m = &out[i];
                rd_kafka_headers_t *h = m->hdrs;
                m->hdrs = NULL; /* taken over (or destroyed) below */
                m->err = sl_kafka_produce(rk, m->topic, RD_KAFKA_PARTITION_UA,
                                          m->key, m->key_len, m->value,
                                          strlen(m->value), h, m);
                if (m->err)
                        m->done = 1;
        }
        if (rk)
                sl_kafka_flush(rk, 60000);
        /* 2. the marks, for what was delivered */
        for (size_t i = 0; i < nout; i++) {
                struct outmsg *m = &out[i];
                char id[256], ts[40], *mark;
                json_t *v;

                letter_id(m->from, id, sizeof(id));
                if (!m->done || m->err) {
                        printf(
                            "fail %s: not delivered to %s: %s\n", id, m->topic,
                            m->done ? rd_kafka_err2str(m->err) : "timed out");
                        failed++;
                        continue;
                }
                v = json_pack("{s:s,s:i,s:I,s:s,s:i,s:I,s:s}", "dlq_topic",
                              m->from->topic, "partition",
                              (int)m->from->partition, "offset",
                              (json_int_t)m->from->offset, "to_topic", m->topic,
                              "to_partition", (int)m->partition, "to_offset",
                              (json_int_t)m->offset, "replayed_at",
                              sl_time_format(sl_wall_ms(), ts, sizeof(ts)));
                mark = json_dumps(v, JSON_COMPACT);
                json_decref(v);
                m->done = 0;
                m->err = sl_kafka_produce(rk, REPLAYED_TOPIC,
                                          RD_KAFKA_PARTITION_UA, id, strlen(id),
                                          mark, strlen(mark), NULL, m);
                free(mark);
                if (m->err)
                        m->done = 1;
                printf("replayed %s -> %s [%d] offset %lld\n", id, m->topic,
                       (int)m->partition, (long long)m->offset);
                done++;
        }
        if (rk && sl_kafka_flush(rk, 60000) != 0) {
                fprintf(stderr,
                        "sluice dlq: some marks were not delivered to %s: "
                        "a later replay may re-publish those letters "
                        "(harmless: loads are upserts)\n",
                        REPLAYED_TOPIC);
                failed++;
        }
        printf("# %zu re-published, %zu skipped (already), %zu failed\n", done,
               skipped, failed);
        sl_info("event=dlq_replay topic=%s replayed=%zu skipped=%zu "
                "failed=%zu",
                o->topics[0], done, skipped, failed);
        rc = failed ? SL_EXIT_FAILURE : SL_EXIT_OK;
out:
        for (size_t i = 0; out && i < ls.n; i++) {
                free(out[i].topic);
                free(out[i].key);
                free(out[i].value);
                if (out[i].hdrs)
                        rd_kafka_headers_destroy(out[i].hdrs);
        }
        free(out);
        if (rk)
                rd_kafka_destroy(rk);
        json_decref(replayed);
        letters_free(&ls);
        return rc;
}

static int known_topic(const char *t)
{
        for (int i = 0; dlq_topics[i]; i++)
                if (strcmp(t, dlq_topics[i]) == 0)
                        return 1;
        return 0;
}

static int parse_offset(const char *s, struct dlq_opts *o)
{
        const char *colon = strchr(s, ':');
        char part[32];
        long long p, off;

        if (!colon || colon - s >= (long)sizeof(part) ||
            o->noffsets == MAX_OFFSETS)
                return -1;
        snprintf(part, sizeof(part), "%.*s", (int)(colon - s), s);
        if (sl_parse_ll(part, &p) < 0 || p < 0 || p > INT32_MAX ||
            sl_parse_ll(colon + 1, &off) < 0 || off < 0)
                return -1;
        o->offsets[o->noffsets].partition = (int32_t)p;
        o->offsets[o->noffsets].offset = off;
        o->noffsets++;
        return 0;
}

int dlq_main(int argc, char **argv)
{
        struct dlq_opts o;
        const char *cmd;
        rd_kafka_t *rk = NULL;
        char errstr[512];
        int rc = SL_EXIT_USAGE, opt;
        static const struct option longopts[] = {
            {"json", no_argument, NULL, 'j'},
            {"all", no_argument, NULL, 'a'},
            {"dry-run", no_argument, NULL, 'n'},
            {"topic", required_argument, NULL, 't'},
            {"grep", required_argument, NULL, 'g'},
            {"map", required_argument, NULL, 'm'},
            {"table", required_argument, NULL, 'T'},
            {"offset", required_argument, NULL, 'o'},
            {"kafka", required_argument, NULL, 'X'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };

        memset(&o, 0, sizeof(o));
        sl_log_init("dlq");
        if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
            strcmp(argv[1], "--help") == 0) {
                dlq_usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? SL_EXIT_USAGE : SL_EXIT_OK;
        }
        cmd = argv[1];
        if (strcmp(cmd, "list") != 0 && strcmp(cmd, "replay") != 0) {
                sl_usage_error("dlq", "unknown subcommand \"%s\"", cmd);
                return SL_EXIT_USAGE;
        }
        /* the subcommand's own words, with the subcommand as argv[0] */
        optind = 1;
        while ((opt = getopt_long(argc - 1, argv + 1, ":h", longopts, NULL)) !=
               -1) {
                switch (opt) {
                case 'h':
                        dlq_usage(stdout);
                        return SL_EXIT_OK;
                case 'j':
                        o.json = 1;
                        break;
                case 'a':
                        o.all = 1;
                        break;
                case 'n':
                        o.dry_run = 1;
                        break;
                case 't':
                        if (!known_topic(optarg) || o.ntopics == 3) {
                                fprintf(stderr,
                                        "sluice dlq: --topic wants dlq.fetch, "
                                        "dlq.transform or dlq.load, got "
                                        "\"%s\"\n",
                                        optarg);
                                return SL_EXIT_USAGE;
                        }
                        o.topics[o.ntopics++] = optarg;
                        break;
                case 'g':
                        o.grep = optarg;
                        break;
                case 'm':
                        o.map = optarg;
                        break;
                case 'T':
                        o.table = optarg;
                        break;
                case 'o':
                        if (parse_offset(optarg, &o) < 0) {
                                fprintf(stderr,
                                        "sluice dlq: --offset wants "
                                        "PARTITION:OFFSET, got \"%s\"\n",
                                        optarg);
                                return SL_EXIT_USAGE;
                        }
                        break;
                case 'X':
                        if (sl_kafka_prop_add(optarg, errstr, sizeof(errstr)) <
                            0) {
                                fprintf(stderr, "sluice dlq: %s\n", errstr);
                                return SL_EXIT_USAGE;
                        }
                        break;
                default:
                        cli_opt_error("dlq", opt, argv + 1);
                        return SL_EXIT_USAGE;
                }
        }
        if (optind < argc - 1) {
                sl_usage_error("dlq", "unexpected argument \"%s\"",
                               argv[1 + optind]);
                return SL_EXIT_USAGE;
        }
        if (strcmp(cmd, "replay") == 0) {
                if (o.ntopics != 1 || (!o.all && o.noffsets == 0) ||
                    (o.all && o.noffsets)) {
                        fprintf(stderr,
                                "sluice dlq replay: wants one --topic and "
                                "either --offset P:O... or --all\n");
                        return SL_EXIT_USAGE;
                }
        } else if (o.noffsets || o.all || o.dry_run) {
                fprintf(stderr, "sluice dlq list: --offset, --all and "
                                "--dry-run are for replay\n");
                return SL_EXIT_USAGE;
        }
        if (o.ntopics == 0)
                for (int i = 0; dlq_topics[i]; i++)
                        o.topics[o.ntopics++] = dlq_topics[i];
        rk = reader_new(errstr, sizeof(errstr));
        if (!rk || sl_kafka_ping(rk, 10000, errstr, sizeof(errstr)) < 0) {
                fprintf(stderr, "sluice dlq: %s\n", errstr);
                rc = SL_EXIT_FAILURE;
                goto out;
        }
        rc = strcmp(cmd, "list") == 0 ? do_list(rk, &o) : do_replay(rk, &o);
out:
        if (rk) {
                rd_kafka_consumer_close(rk);
                rd_kafka_destroy(rk);
        }
        return rc;
}
