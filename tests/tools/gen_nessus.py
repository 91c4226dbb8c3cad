#!/usr/bin/env python3
"""gen_nessus.py SAMPLE.nessus OUT MB: a Nessus v2 report of about MB
megabytes made of the sample's own ReportHost elements repeated, copy k
of each with its name and host-ip moved to 10.(k/65536%256).(k/256%256).(k%256)
(the same records, new hosts), written as a stream. Prints the host count."""
import re, sys

sample, out, mb = sys.argv[1], sys.argv[2], float(sys.argv[3])
doc = open(sample, encoding="utf-8").read()
first = doc.index("<ReportHost")
last = doc.rindex("</ReportHost>") + len("</ReportHost>")
head, hosts_text, tail = doc[:first], doc[first:last], doc[last:]
hosts = re.findall(r"<ReportHost .*?</ReportHost>", hosts_text, re.S)
want = int(mb * 1024 * 1024)
n = 0
with open(out, "w", encoding="utf-8") as f:
    f.write(head)
    size = len(head)
    k = 0
    while size < want:
        ip = "10.%d.%d.%d" % (k // 65536 % 256, k // 256 % 256, k % 256)
        for h in hosts:
            h = re.sub(r'<ReportHost name="[^"]*"', '<ReportHost name="%s"' % ip, h, count=1)
            h = re.sub(r'(<tag name="host-ip">)[^<]*', r'\g<1>' + ip, h)
            f.write(h)
            f.write("\n")
            size += len(h) + 1
            n += 1
            k += 1
            ip = "10.%d.%d.%d" % (k // 65536 % 256, k // 256 % 256, k % 256)
    f.write(tail)
print(n)
