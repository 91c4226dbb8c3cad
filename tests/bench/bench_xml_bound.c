/* bench_xml_bound: the XML case of make bench (issue 27). On one file,
 * either libxml2's reader alone (mode "reader": every node read, its name
 * and value touched, the records counted: the bound), or sluice's
 * conversion of the same file (mode "convert": fetch_xml_stream, the
 * code `sluice fetch --page` runs, into a sink that drops the JSON pages:
 * what the fetcher adds to the bound before publishing). Prints one line
 * "records=N pages=P bytes=B wall_s=S cpu_s=C".
 *
 * usage: bench_xml_bound reader|convert FILE RECORDS_PATH [ARRAY...] */
#include "fetch_xml.h"
#include "sl_util.h"

#include <libxml/xmlreader.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(clockid_t id)
{
        struct timespec ts;

        clock_gettime(id, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* the records: elements at the path's depth with its last step's name */
static long reader_only(int fd, const char *path, size_t *bytes)
{
        const char *last = strrchr(path, '/') + 1;
        int depth = -1;
        long n = 0;
        xmlTextReaderPtr reader;

        for (const char *p = path; *p; p++)
                depth += *p == '/';
        reader = xmlReaderForFd(fd, NULL, NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR |
                                    XML_PARSE_NOWARNING);
        if (!reader)
                return -1;
        *bytes = 0;
        while (xmlTextReaderRead(reader) == 1) {
                const char *name = (const char *)xmlTextReaderConstName(reader);
                const char *value =
                    (const char *)xmlTextReaderConstValue(reader);
                int type = xmlTextReaderNodeType(reader);
                if (value)
                        *bytes += strlen(value);
                if (type == XML_READER_TYPE_ELEMENT &&
                    xmlTextReaderDepth(reader) == depth && name &&
                    strcmp(name, last) == 0)
                        n++;
                while (type == XML_READER_TYPE_ELEMENT &&
                       xmlTextReaderMoveToNextAttribute(reader) == 1) {
                        value = (const char *)xmlTextReaderConstValue(reader);
                        if (value)
                                *bytes += strlen(value);
                }
        }
        xmlFreeTextReader(reader);
        return n;
}

struct drop {
        long records;
        size_t bytes;
};

static int drop_page(const char *page, size_t len, long nrec, void *opaque,
                     char *errstr, size_t errstr_size)
{
        struct drop *d = opaque;

        (void)page;
        (void)errstr;
        (void)errstr_size;
        d->records += nrec;
        d->bytes += len;
        return 0;
}

int main(int argc, char **argv)
{
        struct fetch_xml_opts o;
        struct fetch_xml_sink sink;
        struct drop d;
        char err[512];
        double w0, c0;
        long pages = 0;
        int fd, rc;

        if (argc < 4 ||
            (strcmp(argv[1], "reader") != 0 && strcmp(argv[1], "convert"))) {
                fprintf(stderr,
                        "usage: %s reader|convert FILE RECORDS_PATH "
                        "[ARRAY...]\n",
                        argv[0]);
                return 2;
        }
        fd = open(argv[2], O_RDONLY);
        if (fd < 0) {
                perror(argv[2]);
                return 1;
        }
        memset(&d, 0, sizeof(d));
        w0 = now_s(CLOCK_MONOTONIC);
        c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
        if (strcmp(argv[1], "reader") == 0) {
                d.records = reader_only(fd, argv[3], &d.bytes);
                rc = d.records < 0;
        } else {
                memset(&o, 0, sizeof(o));
                o.records = argv[3];
                o.arrays = (const char *const *)(argv + 4);
                o.arrays_n = (size_t)(argc - 4);
                o.max_depth = 64;
                o.max_bytes = (size_t)64 << 20;
                sink.page_bytes = (size_t)8 << 20; /* as sluice fetch */
                sink.emit = drop_page;
                sink.opaque = &d;
                rc = fetch_xml_stream(&o, fd, &sink, &pages, err, sizeof(err));
                if (rc != FETCH_XML_OK)
                        fprintf(stderr, "convert: %s\n", err);
        }
        close(fd);
        if (rc != 0)
                return 1;
        printf("records=%ld pages=%ld bytes=%zu wall_s=%.3f cpu_s=%.3f\n",
               d.records, pages, d.bytes, now_s(CLOCK_MONOTONIC) - w0,
               now_s(CLOCK_PROCESS_CPUTIME_ID) - c0);
        return 0;
}
