#!/usr/bin/env python3
"""fake_kafka.py: a small Kafka-protocol server for tests of what the
embedded broker (librdkafka 2.0.2's mock cluster) cannot answer: the Admin
API for consumer groups (DescribeGroups, OffsetFetch, OffsetCommit without
membership).

It serves one broker (node 1) and only the requests and versions it
advertises in ApiVersions, so librdkafka 2.0.2 negotiates versions this file
reads and writes:

  ApiVersions 0-3, Metadata 0-4, FindCoordinator 0-2, ListOffsets 0-2,
  OffsetFetch 0-5, OffsetCommit 0-7, DescribeGroups 0-4, ListGroups 0-2,
  and JoinGroup, SyncGroup, Heartbeat, LeaveGroup v0, which it always
  refuses (GROUP_AUTHORIZATION_FAILED): they are advertised so that a client
  that tries to join a group is seen doing it.

No Produce or Fetch: topics are partitions with watermarks, nothing more.

Configuration (JSON file):
  {"cluster_id": "fakeKafka",
   "topics": {"raw.a": [{"low": 0, "high": 100}, ...]},
   "groups": {"g": {"state": "Stable", "protocol_type": "consumer",
                    "members": [{"client_id": "w1", "host": "/10.0.0.7"}],
                    "offsets": {"raw.a": {"0": 40, "1": "earliest"}}}}}
An offset may be a number, "earliest" (-2) or "latest" (-1). A group not
in "groups" is unknown (DescribeGroups answers Dead, as Kafka does).
OffsetCommit without membership succeeds on a group with no members and
moves its offsets; on a group with members it fails with UNKNOWN_MEMBER_ID,
and on a group with "commit_error": N with error N (nothing moves).

Every request is appended to the log file (--log), one line each:
"<ApiName> v<version>[ detail]", so a test can tell what a client asked.

usage: fake_kafka.py CONFIG --port-file FILE --log FILE
The port (chosen by the system) is written to --port-file once listening.
"""
import argparse
import json
import os
import socket
import socketserver
import struct
import sys
import threading

NODE_ID = 1
ERR_UNKNOWN_TOPIC = 3
ERR_UNKNOWN_MEMBER = 25
ERR_GROUP_AUTH = 30
ERR_UNSUPPORTED_VERSION = 35

API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata",
    8: "OffsetCommit", 9: "OffsetFetch", 10: "FindCoordinator",
    11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup",
    15: "DescribeGroups", 16: "ListGroups", 18: "ApiVersions",
}
# api key -> (min, max) version advertised, each one handled below
ADVERTISED = {
    18: (0, 3), 3: (0, 4), 10: (0, 2), 2: (0, 2), 9: (0, 5), 8: (0, 7),
    15: (0, 4), 16: (0, 2), 11: (0, 0), 14: (0, 0), 12: (0, 0), 13: (0, 0),
}


class Reader:
    """Big-endian reader over one request body."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def _take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def i8(self):
        return self._take(">b")

    def i16(self):
        return self._take(">h")

    def i32(self):
        return self._take(">i")

    def i64(self):
        return self._take(">q")

    def string(self):
        n = self.i16()
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def array(self, item):
        """A list, or None for a null array (count -1)."""
        n = self.i32()
        if n < 0:
            return None
        return [item() for _ in range(n)]

    def uvarint(self):
        shift = v = 0
        while True:
            b = self.data[self.pos]
            self.pos += 1
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7

    def skip_tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.pos += self.uvarint()


class Writer:
    """Big-endian writer of one response body."""

    def __init__(self):
        self.parts = []

    def i8(self, v):
        self.parts.append(struct.pack(">b", v))

    def i16(self, v):
        self.parts.append(struct.pack(">h", v))

    def i32(self, v):
        self.parts.append(struct.pack(">i", v))

    def i64(self, v):
        self.parts.append(struct.pack(">q", v))

    def string(self, s):
        if s is None:
            self.i16(-1)
            return
        b = s.encode()
        self.i16(len(b))
        self.parts.append(b)

    def bytes_(self, b):
        self.i32(len(b))
        self.parts.append(b)

    def array(self, items, write):
        self.i32(len(items))
        for it in items:
            write(it)

    def uvarint(self, v):
        out = bytearray()
        while True:
            b = v & 0x7F
            v >>= 7
            if v:
                out.append(b | 0x80)
            else:
                out.append(b)
                break
        self.parts.append(bytes(out))

    def get(self):
        return b"".join(self.parts)


def offset_value(v, where):
    if isinstance(v, bool) or v is None:
        raise ValueError(f"{where}: an offset must be a number, earliest "
                         f"or latest, got {v!r}")
    if isinstance(v, int):
        return v
    if v == "earliest":
        return -2
    if v == "latest":
        return -1
    raise ValueError(f"{where}: an offset must be a number, earliest or "
                     f"latest, got {v!r}")


class State:
    """The cluster as configured, and the offsets committed since."""

    def __init__(self, path):
        with open(path) as f:
            conf = json.load(f)
        self.lock = threading.Lock()
        self.cluster_id = conf.get("cluster_id", "fakeKafka")
        self.topics = {}
        for name, parts in conf.get("topics", {}).items():
            if not isinstance(parts, list) or not parts:
                raise ValueError(f"{path}: topics.{name}: a list of "
                                 f"partitions wanted")
            self.topics[name] = [(int(p.get("low", 0)), int(p["high"]))
                                 for p in parts]
        self.groups = {}
        for name, g in conf.get("groups", {}).items():
            offsets = {}
            for t, parts in g.get("offsets", {}).items():
                for p, off in parts.items():
                    offsets[(t, int(p))] = offset_value(
                        off, f"{path}: groups.{name}.offsets.{t}.{p}")
            members = []
            for i, m in enumerate(g.get("members", [])):
                members.append({
                    "member_id": m.get("member_id",
                                       f"{m['client_id']}-{i}-fake"),
                    "client_id": m["client_id"],
                    "host": m["host"],
                })
            self.groups[name] = {
                "state": g.get("state", "Stable" if members else "Empty"),
                "protocol_type": g.get("protocol_type", "consumer"),
                "protocol": g.get("protocol", "range" if members else ""),
                "members": members,
                "offsets": offsets,
                "commit_error": int(g.get("commit_error", 0)),
            }


class Handler(socketserver.BaseRequestHandler):
    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.request.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def handle(self):
        srv = self.server
        while True:
            head = self.recv_exact(4)
            if head is None:
                return
            size = struct.unpack(">i", head)[0]
            data = self.recv_exact(size)
            if data is None:
                return
            r = Reader(data)
            key, ver, corr = r.i16(), r.i16(), r.i32()
            r.string()  # client id
            name = API_NAMES.get(key, f"Api{key}")
            lo_hi = ADVERTISED.get(key)
            if key == 18 and ver >= 3:
                r.skip_tags()  # request header v2
            if lo_hi is None or (key != 18 and not
                                 lo_hi[0] <= ver <= lo_hi[1]):
                srv.log(f"{name} v{ver} not served")
                return  # as a broker does: close the connection
            w = Writer()
            detail = getattr(self, "do_" + name)(r, ver, w)
            srv.log(f"{name} v{ver}" + (f" {detail}" if detail else ""))
            body = struct.pack(">i", corr) + w.get()  # header v0
            self.request.sendall(struct.pack(">i", len(body)) + body)

    # ApiVersions: a version above 3 gets the v0 answer with
    # UNSUPPORTED_VERSION, as Kafka does, and the client retries lower.
    def do_ApiVersions(self, r, ver, w):
        keys = sorted(ADVERTISED.items())
        if ver > 3:
            w.i16(ERR_UNSUPPORTED_VERSION)
            w.array(keys, lambda kv: (w.i16(kv[0]), w.i16(kv[1][0]),
                                      w.i16(kv[1][1])))
            return "unsupported"
        w.i16(0)
        if ver >= 3:
            w.uvarint(len(keys) + 1)
            for k, (lo, hi) in keys:
                w.i16(k)
                w.i16(lo)
                w.i16(hi)
                w.uvarint(0)
        else:
            w.array(keys, lambda kv: (w.i16(kv[0]), w.i16(kv[1][0]),
                                      w.i16(kv[1][1])))
        if ver >= 1:
            w.i32(0)
        if ver >= 3:
            w.uvarint(0)
        return None

    def do_Metadata(self, r, ver, w):
        st = self.server.state
        names = r.array(r.string)
        if names is None or (ver == 0 and not names):
            names = sorted(st.topics)
        if ver >= 3:
            w.i32(0)

        def broker(_):
            w.i32(NODE_ID)
            w.string(self.server.host)
            w.i32(self.server.port)
            if ver >= 1:
                w.string(None)  # rack

        w.array([NODE_ID], broker)
        if ver >= 2:
            w.string(st.cluster_id)
        if ver >= 1:
            w.i32(NODE_ID)  # controller

        def topic(name):
            parts = st.topics.get(name)
            w.i16(0 if parts is not None else ERR_UNKNOWN_TOPIC)
            w.string(name)
            if ver >= 1:
                w.i8(0)  # internal

            def part(p):
                w.i16(0)
                w.i32(p)
                w.i32(NODE_ID)
                w.array([NODE_ID], w.i32)
                w.array([NODE_ID], w.i32)

            w.array(list(range(len(parts or []))), part)

        w.array(names, topic)
        return "topics=" + ",".join(names)

    def do_FindCoordinator(self, r, ver, w):
        key = r.string()
        if ver >= 1:
            r.i8()
            w.i32(0)
        w.i16(0)
        if ver >= 1:
            w.string(None)
        w.i32(NODE_ID)
        w.string(self.server.host)
        w.i32(self.server.port)
        return f"key={key}"

    def do_ListOffsets(self, r, ver, w):
        st = self.server.state
        r.i32()  # replica id
        if ver >= 2:
            r.i8()  # isolation level

        def req_part():
            p, ts = r.i32(), r.i64()
            if ver == 0:
                r.i32()  # max offsets
            return p, ts

        topics = r.array(lambda: (r.string(), r.array(req_part)))
        if ver >= 2:
            w.i32(0)
        asked = []

        def topic(t):
            name, parts = t
            known = st.topics.get(name, [])
            w.string(name)

            def part(pt):
                p, ts = pt
                err, off = 0, -1
                if p >= len(known):
                    err = ERR_UNKNOWN_TOPIC
                elif ts == -2:
                    off = known[p][0]
                elif ts == -1:
                    off = known[p][1]
                asked.append(f"{name}[{p}]@{ts}")
                w.i32(p)
                w.i16(err)
                if ver == 0:
                    w.array([off] if off >= 0 else [], w.i64)
                else:
                    w.i64(-1)
                    w.i64(off)

            w.array(parts, part)

        w.array(topics, topic)
        return " ".join(asked)

    def do_OffsetFetch(self, r, ver, w):
        st = self.server.state
        group = r.string()
        topics = r.array(lambda: (r.string(), r.array(r.i32)))
        with st.lock:
            g = st.groups.get(group)
            offsets = dict(g["offsets"]) if g else {}
        if topics is None:
            names = sorted({t for t, _ in offsets})
            topics = [(t, sorted(p for tt, p in offsets if tt == t))
                      for t in names]
        if ver >= 3:
            w.i32(0)

        def topic(t):
            name, parts = t
            w.string(name)

            def part(p):
                w.i32(p)
                w.i64(offsets.get((name, p), -1))
                if ver >= 5:
                    w.i32(-1)  # leader epoch
                w.string("")
                w.i16(0)

            w.array(parts, part)

        w.array(topics, topic)
        if ver >= 2:
            w.i16(0)
        return f"group={group}"

    def do_OffsetCommit(self, r, ver, w):
        st = self.server.state
        group = r.string()
        gen, member = -1, ""
        if ver >= 1:
            gen, member = r.i32(), r.string()
        if ver >= 7:
            r.string()  # group instance id
        if 2 <= ver <= 4:
            r.i64()  # retention

        def req_part():
            p, off = r.i32(), r.i64()
            if ver >= 6:
                r.i32()  # leader epoch
            if ver == 1:
                r.i64()  # timestamp
            r.string()  # metadata
            return p, off

        topics = r.array(lambda: (r.string(), r.array(req_part)))
        with st.lock:
            g = st.groups.get(group)
            err = ERR_UNKNOWN_MEMBER if g and g["members"] else 0
            if g and g.get("commit_error"):
                err = g["commit_error"]
            if not err:
                if g is None:
                    g = st.groups[group] = {
                        "state": "Empty", "protocol_type": "consumer",
                        "protocol": "", "members": [], "offsets": {}}
                for name, parts in topics:
                    for p, off in parts:
                        g["offsets"][(name, p)] = off
        if ver >= 3:
            w.i32(0)
        done = []

        def topic(t):
            name, parts = t
            w.string(name)

            def part(pt):
                done.append(f"{name}[{pt[0]}]={pt[1]}")
                w.i32(pt[0])
                w.i16(err)

            w.array(parts, part)

        w.array(topics, topic)
        return (f"group={group} generation={gen} " + " ".join(done) +
                (f" error={err}" if err else ""))

    def do_DescribeGroups(self, r, ver, w):
        st = self.server.state
        names = r.array(r.string)
        if ver >= 3:
            r.i8()
        if ver >= 1:
            w.i32(0)

        def group(name):
            with st.lock:
                g = st.groups.get(name)
                g = dict(g) if g else None
            w.i16(0)
            w.string(name)
            if g is None:  # unknown to the cluster: Kafka says Dead
                w.string("Dead")
                w.string("")
                w.string("")
                w.array([], None)
            else:
                w.string(g["state"])
                w.string(g["protocol_type"])
                w.string(g["protocol"])

                def member(m):
                    w.string(m["member_id"])
                    if ver >= 4:
                        w.string(None)
                    w.string(m["client_id"])
                    w.string(m["host"])
                    w.bytes_(b"")
                    w.bytes_(b"")

                w.array(g["members"], member)
            if ver >= 3:
                w.i32(-2147483648)  # authorized operations: not asked

        w.array(names, group)
        return "groups=" + ",".join(names)

    def do_ListGroups(self, r, ver, w):
        st = self.server.state
        with st.lock:
            groups = [(n, g["protocol_type"]) for n, g in
                      sorted(st.groups.items())]
        if ver >= 1:
            w.i32(0)
        w.i16(0)
        w.array(groups, lambda g: (w.string(g[0]), w.string(g[1])))
        return None

    # Membership is refused: whoever asks is recorded in the log.
    def do_JoinGroup(self, r, ver, w):
        group = r.string()
        w.i16(ERR_GROUP_AUTH)
        w.i32(-1)
        w.string("")
        w.string("")
        w.string("")
        w.array([], None)
        return f"group={group}"

    def do_SyncGroup(self, r, ver, w):
        w.i16(ERR_GROUP_AUTH)
        w.bytes_(b"")
        return f"group={r.string()}"

    def do_Heartbeat(self, r, ver, w):
        w.i16(ERR_GROUP_AUTH)
        return f"group={r.string()}"

    def do_LeaveGroup(self, r, ver, w):
        w.i16(ERR_GROUP_AUTH)
        return f"group={r.string()}"


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state, log_path):
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = state
        self.host, self.port = self.server_address
        self.log_lock = threading.Lock()
        self.log_file = open(log_path, "a", buffering=1)

    def log(self, line):
        with self.log_lock:
            self.log_file.write(line + "\n")


def main():
    ap = argparse.ArgumentParser(description="a fake Kafka broker for tests")
    ap.add_argument("config")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    try:
        state = State(a.config)
    except ValueError as e:  # names the file and the field itself
        print(f"fake_kafka: {e}", file=sys.stderr)
        return 2
    except (OSError, KeyError, TypeError, AttributeError) as e:
        print(f"fake_kafka: {a.config}: bad configuration: {e!r}",
              file=sys.stderr)
        return 2
    srv = Server(state, a.log)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{srv.port}\n")
    os.rename(tmp, a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
