/*
 * otel_audit_otlpwire: one OTLP LogRecord and its integrity canonical form, in C.
 *
 * Why: the durable export path encodes every security event on its intake thread. The
 * pure-Python encoder (otel_audit/export/_wire.py) takes 15-25 us a record, and on a
 * threaded web server that time is spent holding the GIL that the request threads want:
 * removing the intake's work altogether brought the 401 scenario of bench_http from a p50
 * ratio of about 1.3 to about 1.05. This module does the same work in about a tenth of
 * the time.
 *
 * It is a transcription of _wire.encode_record (the reference, and the fallback when this
 * module is absent): the same bytes, the same canonical text, the same refusals. Anything
 * the Python encoder refuses with Unencodable is refused here with the class passed to
 * configure(); strings with lone surrogates raise UnicodeEncodeError in both. Tests
 * compare the two on generated records. No Python code runs while a record is encoded
 * (only exact built-in types are accepted), so the objects cannot change underneath.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} Buf;

static PyObject *unencodable = NULL; /* the exception class (configure) */
static int max_depth = -1;           /* EXPORT.max_depth; -1 until configured */
static Py_ssize_t max_items = 0;     /* EXPORT.max_items */
static PyObject *skip_prefix = NULL; /* str: top-level keys under it are the chain's */

static const char TOO_BIG[] = "container beyond the export bounds";
static const char KEY_TYPE[] = "mapping key that is not a string";
static const char INT_RANGE[] = "integer outside int64";

/* --- byte buffers -------------------------------------------------------------------- */

static int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (extra > PY_SSIZE_T_MAX - b->len) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t need = b->len + extra;
    if (need <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > PY_SSIZE_T_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *data = PyMem_Realloc(b->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static int put(Buf *b, const void *p, Py_ssize_t n) {
    if (n == 0) return 0;
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->data + b->len, p, (size_t)n);
    b->len += n;
    return 0;
}

static int put_str(Buf *b, const char *s) { return put(b, s, (Py_ssize_t)strlen(s)); }

static int put_byte(Buf *b, unsigned char c) {
    if (buf_reserve(b, 1) < 0) return -1;
    b->data[b->len++] = (char)c;
    return 0;
}

static int put_varint(Buf *b, uint64_t v) {
    unsigned char tmp[10];
    int n = 0;
    while (v >= 0x80) {
        tmp[n++] = (unsigned char)((v & 0x7F) | 0x80);
        v >>= 7;
    }
    tmp[n++] = (unsigned char)v;
    return put(b, tmp, n);
}

static int put_field(Buf *b, unsigned char tag, const char *p, Py_ssize_t n) {
    if (put_byte(b, tag) < 0 || put_varint(b, (uint64_t)n) < 0) return -1;
    return put(b, p, n);
}

static int put_fixed(Buf *b, uint64_t v, int width) {
    unsigned char tmp[8];
    for (int i = 0; i < width; i++) tmp[i] = (unsigned char)(v >> (8 * i));
    return put(b, tmp, width);
}

static void buf_free(Buf *b) {
    PyMem_Free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* json.encoder.encode_basestring over UTF-8 bytes: '"', '\\' and controls below 0x20 are
 * escaped, everything else is copied. UTF-8 bytes of non-ASCII are all >= 0x80, so a
 * byte-wise pass gives the same text as the code-point-wise original. */
static int put_quoted(Buf *b, const char *s, Py_ssize_t n) {
    static const char hex[] = "0123456789abcdef";
    if (put_byte(b, '"') < 0) return -1;
    Py_ssize_t start = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        if (put(b, s + start, i - start) < 0) return -1;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        int w = 2;
        switch (c) {
            case '"': esc[1] = '"'; break;
            case '\\': esc[1] = '\\'; break;
            case '\b': esc[1] = 'b'; break;
            case '\f': esc[1] = 'f'; break;
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            default:
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 0xF];
                w = 6;
        }
        if (put(b, esc, w) < 0) return -1;
        start = i + 1;
    }
    if (put(b, s + start, n - start) < 0) return -1;
    return put_byte(b, '"');
}

static int put_base64(Buf *b, const unsigned char *s, Py_ssize_t n) {
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (n > (PY_SSIZE_T_MAX / 4) * 3 - 3) {
        PyErr_NoMemory();
        return -1;
    }
    if (buf_reserve(b, (n + 2) / 3 * 4) < 0) return -1;
    char *o = b->data + b->len;
    Py_ssize_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = ((uint32_t)s[i] << 16) | ((uint32_t)s[i + 1] << 8) | s[i + 2];
        *o++ = alphabet[(v >> 18) & 63];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
        *o++ = alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n) v |= (uint32_t)s[i + 1] << 8;
        *o++ = alphabet[(v >> 18) & 63];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = (i + 1 < n) ? alphabet[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->len = o - b->data;
    return 0;
}

static int put_hex(Buf *b, const unsigned char *s, Py_ssize_t n) {
    static const char hex[] = "0123456789abcdef";
    for (Py_ssize_t i = 0; i < n; i++) {
        char pair[2] = {hex[s[i] >> 4], hex[s[i] & 0xF]};
        if (put(b, pair, 2) < 0) return -1;
    }
    return 0;
}

/* Decimal text of an unsigned / signed 64-bit integer (no snprintf: no truncation). */
static int put_u64(Buf *b, uint64_t v) {
    char tmp[20];
    int n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return put(b, tmp + sizeof tmp - n, n);
}

static int put_i64(Buf *b, long long v) {
    if (v >= 0) return put_u64(b, (uint64_t)v);
    if (put_byte(b, '-') < 0) return -1;
    return put_u64(b, (uint64_t)0 - (uint64_t)v);
}

/* The UTF-8 of a str, strict (lone surrogates raise UnicodeEncodeError, as str.encode()).
 * ASCII strings are read in place. Others are encoded into a new bytes object returned in
 * *owner (the caller releases it): PyUnicode_AsUTF8AndSize would instead keep a UTF-8
 * copy inside the str for its lifetime, tripling a large non-ASCII value's memory. */
static const char *utf8_of(PyObject *s, Py_ssize_t *n, PyObject **owner) {
    *owner = NULL;
    if (PyUnicode_READY(s) < 0) return NULL;
    if (PyUnicode_IS_ASCII(s)) {
        *n = PyUnicode_GET_LENGTH(s);
        return (const char *)PyUnicode_DATA(s);
    }
    PyObject *bytes = PyUnicode_AsUTF8String(s);
    if (bytes == NULL) return NULL;
    *owner = bytes;
    *n = PyBytes_GET_SIZE(bytes);
    return PyBytes_AS_STRING(bytes);
}

static int refuse(const char *why) {
    PyErr_SetString(unencodable, why);
    return -1;
}

/* --- values -------------------------------------------------------------------------- */

static int any_value(PyObject *v, int depth, Buf *wire, Buf *canon);

/* A KeyValue message's bytes (key field, then the value field) into `wire`; the value's
 * canonical text into `canon`. `av` holds the value's AnyValue bytes meanwhile: the value
 * field's length prefix needs them first. */
static int key_value(const char *key, Py_ssize_t klen, PyObject *value, int depth, Buf *wire,
                     Buf *canon) {
    Buf av = {0};
    int rc = -1;
    if (any_value(value, depth, &av, canon) < 0) goto done;
    if (put_field(wire, 0x0A, key, klen) < 0) goto done;
    if (put_field(wire, 0x12, av.data, av.len) < 0) goto done;
    rc = 0;
done:
    buf_free(&av);
    return rc;
}

static int array_value(PyObject *seq, int depth, Buf *wire, Buf *canon) {
    Buf body = {0}, item = {0};
    int rc = -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    if (put_str(canon, "{\"a\":[") < 0) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i && put_byte(canon, ',') < 0) goto done;
        item.len = 0;
        if (any_value(items[i], depth, &item, canon) < 0) goto done;
        if (put_field(&body, 0x0A, item.data, item.len) < 0) goto done;
    }
    if (put_str(canon, "]}") < 0) goto done;
    if (put_field(wire, 0x2A, body.data, body.len) < 0) goto done;
    rc = 0;
done:
    buf_free(&body);
    buf_free(&item);
    return rc;
}

typedef struct {
    const char *key;
    PyObject *owner; /* the key's UTF-8 bytes when not ASCII, else NULL */
    Py_ssize_t klen;
    Py_ssize_t start; /* of "[key,V]" in the pairs buffer */
    Py_ssize_t end;
} Pair;

/* Code-point order of UTF-8 keys is their byte order; dict keys are unique, so the
 * stable sort of the Python version and qsort agree. */
static int pair_cmp(const void *a, const void *b) {
    const Pair *x = a, *y = b;
    Py_ssize_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = n ? memcmp(x->key, y->key, (size_t)n) : 0;
    if (c) return c;
    return (x->klen > y->klen) - (x->klen < y->klen);
}

/* Entries of a mapping: `wire_tag` wraps each KeyValue (0x0A inside a KeyValueList, 0x32
 * as LogRecord.attributes); `skip` drops keys under skip_prefix (top level only). The
 * sorted "[key,V]" pairs, comma-separated, go to `canon`. */
static int mapping_entries(PyObject *map, int depth, unsigned char wire_tag, int skip, Buf *wire,
                           Buf *canon) {
    Py_ssize_t n = PyDict_GET_SIZE(map);
    Pair *pairs = NULL;
    Buf texts = {0}, kv = {0};
    int rc = -1;
    Py_ssize_t count = 0, pos = 0;
    PyObject *key, *value;
    if (n) {
        pairs = PyMem_Malloc((size_t)n * sizeof(Pair));
        if (pairs == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    }
    while (PyDict_Next(map, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key)) {
            refuse(KEY_TYPE);
            goto done;
        }
        if (skip) { /* before encoding, as the Python reference tests the prefix first */
            Py_ssize_t ours = PyUnicode_Tailmatch(key, skip_prefix, 0, PY_SSIZE_T_MAX, -1);
            if (ours < 0) goto done;
            if (ours) continue;
        }
        if (count >= n) { /* cannot happen without Python code running; be safe */
            PyErr_SetString(PyExc_RuntimeError, "mapping changed size while encoding");
            goto done;
        }
        Pair *p = &pairs[count++];
        Py_ssize_t klen;
        const char *k = utf8_of(key, &klen, &p->owner);
        if (k == NULL) goto done;
        p->key = k;
        p->klen = klen;
        p->start = texts.len;
        if (put_byte(&texts, '[') < 0 || put_quoted(&texts, k, klen) < 0 ||
            put_byte(&texts, ',') < 0)
            goto done;
        kv.len = 0;
        if (key_value(k, klen, value, depth, &kv, &texts) < 0) goto done;
        if (put_byte(&texts, ']') < 0) goto done;
        p->end = texts.len;
        if (put_field(wire, wire_tag, kv.data, kv.len) < 0) goto done;
    }
    if (count > 1) qsort(pairs, (size_t)count, sizeof(Pair), pair_cmp);
    for (Py_ssize_t i = 0; i < count; i++) {
        if (i && put_byte(canon, ',') < 0) goto done;
        if (put(canon, texts.data + pairs[i].start, pairs[i].end - pairs[i].start) < 0) goto done;
    }
    rc = 0;
done:
    for (Py_ssize_t i = 0; i < count; i++) Py_XDECREF(pairs[i].owner);
    PyMem_Free(pairs);
    buf_free(&texts);
    buf_free(&kv);
    return rc;
}

static int kvlist_value(PyObject *map, int depth, Buf *wire, Buf *canon) {
    Buf body = {0};
    int rc = -1;
    if (put_str(canon, "{\"m\":[") < 0) goto done;
    if (mapping_entries(map, depth, 0x0A, 0, &body, canon) < 0) goto done;
    if (put_str(canon, "]}") < 0) goto done;
    if (put_field(wire, 0x32, body.data, body.len) < 0) goto done;
    rc = 0;
done:
    buf_free(&body);
    return rc;
}

/* The AnyValue message of `v` (its fields, not wrapped) into `wire`; V(v) into `canon`. */
static int any_value(PyObject *v, int depth, Buf *wire, Buf *canon) {
    if (PyUnicode_CheckExact(v)) {
        Py_ssize_t n;
        PyObject *owner;
        const char *s = utf8_of(v, &n, &owner);
        if (s == NULL) return -1;
        int rc = -1;
        if (put_field(wire, 0x0A, s, n) == 0 && put_str(canon, "{\"s\":") == 0 &&
            put_quoted(canon, s, n) == 0)
            rc = put_byte(canon, '}');
        Py_XDECREF(owner);
        return rc;
    }
    if (PyBool_Check(v)) {
        int t = v == Py_True;
        if (put(wire, t ? "\x10\x01" : "\x10\x00", 2) < 0) return -1;
        return put_str(canon, t ? "{\"b\":true}" : "{\"b\":false}");
    }
    if (PyLong_CheckExact(v)) {
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow) return refuse(INT_RANGE);
        if (x == -1 && PyErr_Occurred()) return -1;
        if (put_byte(wire, 0x18) < 0 || put_varint(wire, (uint64_t)x) < 0) return -1;
        if (put_str(canon, "{\"i\":\"") < 0 || put_i64(canon, x) < 0) return -1;
        return put_str(canon, "\"}");
    }
    if (v == Py_None) return put_str(canon, "null");
    if (PyFloat_CheckExact(v)) {
        unsigned char packed[8];
        if (PyFloat_Pack8(PyFloat_AS_DOUBLE(v), (char *)packed, 1) < 0) return -1;
        if (put_byte(wire, 0x21) < 0 || put(wire, packed, 8) < 0) return -1;
        PyObject *repr = PyObject_Repr(v); /* float's own repr: no Python code runs */
        if (repr == NULL) return -1;
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(repr, &n); /* ASCII: no copy is kept */
        int rc = -1;
        if (s != NULL && put_str(canon, "{\"d\":") == 0 && put_quoted(canon, s, n) == 0)
            rc = put_byte(canon, '}');
        Py_DECREF(repr);
        return rc;
    }
    if (PyBytes_CheckExact(v)) {
        const unsigned char *s = (const unsigned char *)PyBytes_AS_STRING(v);
        Py_ssize_t n = PyBytes_GET_SIZE(v);
        if (put_field(wire, 0x3A, (const char *)s, n) < 0) return -1;
        if (put_str(canon, "{\"y\":\"") < 0 || put_base64(canon, s, n) < 0) return -1;
        return put_str(canon, "\"}");
    }
    if (PyTuple_CheckExact(v) || PyList_CheckExact(v)) {
        if (depth >= max_depth || PySequence_Fast_GET_SIZE(v) > max_items) return refuse(TOO_BIG);
        return array_value(v, depth + 1, wire, canon);
    }
    if (PyDict_CheckExact(v)) {
        if (depth >= max_depth || PyDict_GET_SIZE(v) > max_items) return refuse(TOO_BIG);
        return kvlist_value(v, depth + 1, wire, canon);
    }
    PyObject *name = PyType_GetName(Py_TYPE(v));
    if (name == NULL) return -1;
    PyErr_SetObject(unencodable, name);
    Py_DECREF(name);
    return -1;
}

/* --- the record ---------------------------------------------------------------------- */

static int fixed_arg(PyObject *o, uint64_t limit, uint64_t *out) {
    unsigned long long x = PyLong_AsUnsignedLongLong(o);
    if (x == (unsigned long long)-1 && PyErr_Occurred()) return -1;
    if (x > limit) {
        PyErr_SetString(PyExc_OverflowError, "value out of range for its field");
        return -1;
    }
    *out = x;
    return 0;
}

static int optional_text(Buf *b, unsigned char tag, PyObject *o) {
    if (o == Py_None) return 0;
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "expected str or None, got %.100s", Py_TYPE(o)->tp_name);
        return -1;
    }
    Py_ssize_t n;
    PyObject *owner;
    const char *s = utf8_of(o, &n, &owner);
    if (s == NULL) return -1;
    int rc = n ? put_field(b, tag, s, n) : 0;
    Py_XDECREF(owner);
    return rc;
}

PyDoc_STRVAR(encode_record_doc,
             "encode_record(timestamp, severity, severity_text, body, attributes, dropped,\n"
             "              flags, trace_id, span_id, observed, event_name)\n"
             "--\n\n"
             "A LogRecord message (without integrity attributes) and its canonical form.\n\n"
             "timestamp, observed: ints (0: absent); severity, dropped, flags: ints;\n"
             "severity_text, event_name: str or None; attributes: dict or None;\n"
             "trace_id, span_id: b'' or 16 / 8 big-endian bytes.");

static PyObject *encode_record(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 11) {
        PyErr_Format(PyExc_TypeError, "encode_record() takes 11 arguments (%zd given)", nargs);
        return NULL;
    }
    if (unencodable == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "otel_audit_otlpwire.configure() was not called");
        return NULL;
    }
    PyObject *attributes = args[4], *trace = args[7], *span = args[8];
    if (attributes != Py_None && !PyDict_CheckExact(attributes)) {
        PyErr_SetString(PyExc_TypeError, "attributes must be a dict (not a subclass) or None");
        return NULL;
    }
    if (!PyBytes_Check(trace) || !PyBytes_Check(span) ||
        (PyBytes_GET_SIZE(trace) != 0 && PyBytes_GET_SIZE(trace) != 16) ||
        (PyBytes_GET_SIZE(span) != 0 && PyBytes_GET_SIZE(span) != 8)) {
        PyErr_SetString(PyExc_ValueError, "trace_id / span_id must be b'' or 16 / 8 bytes");
        return NULL;
    }
    uint64_t timestamp, severity, dropped, flags, observed;
    if (fixed_arg(args[0], UINT64_MAX, &timestamp) < 0 ||
        fixed_arg(args[1], INT64_MAX, &severity) < 0 ||
        fixed_arg(args[5], INT64_MAX, &dropped) < 0 ||
        fixed_arg(args[6], UINT32_MAX, &flags) < 0 ||
        fixed_arg(args[9], UINT64_MAX, &observed) < 0)
        return NULL;

    Buf wire = {0}, canon = {0}, body = {0}, body_text = {0};
    PyObject *result = NULL;
    if (timestamp && (put_byte(&wire, 0x09) < 0 || put_fixed(&wire, timestamp, 8) < 0)) goto done;
    if (severity && (put_byte(&wire, 0x10) < 0 || put_varint(&wire, severity) < 0)) goto done;
    if (optional_text(&wire, 0x1A, args[2]) < 0) goto done;
    if (any_value(args[3], 0, &body, &body_text) < 0) goto done;
    if (put_field(&wire, 0x2A, body.data, body.len) < 0) goto done;
    if (put_str(&canon, "{\"attrs\":[") < 0) goto done;
    if (attributes != Py_None &&
        mapping_entries(attributes, 0, 0x32, 1, &wire, &canon) < 0)
        goto done;
    if (dropped && (put_byte(&wire, 0x38) < 0 || put_varint(&wire, dropped) < 0)) goto done;
    if (flags && (put_byte(&wire, 0x45) < 0 || put_fixed(&wire, flags, 4) < 0)) goto done;
    if (PyBytes_GET_SIZE(trace) &&
        put_field(&wire, 0x4A, PyBytes_AS_STRING(trace), PyBytes_GET_SIZE(trace)) < 0)
        goto done;
    if (PyBytes_GET_SIZE(span) &&
        put_field(&wire, 0x52, PyBytes_AS_STRING(span), PyBytes_GET_SIZE(span)) < 0)
        goto done;
    if (observed && (put_byte(&wire, 0x59) < 0 || put_fixed(&wire, observed, 8) < 0)) goto done;
    if (optional_text(&wire, 0x62, args[10]) < 0) goto done;

    if (put_str(&canon, "],\"body\":") < 0 || put(&canon, body_text.data, body_text.len) < 0)
        goto done;
    if (put_str(&canon, ",\"sev\":") < 0 || put_u64(&canon, severity) < 0 ||
        put_str(&canon, ",\"span\":\"") < 0)
        goto done;
    if (put_hex(&canon, (const unsigned char *)PyBytes_AS_STRING(span), PyBytes_GET_SIZE(span)) < 0)
        goto done;
    if (put_str(&canon, "\",\"time\":\"") < 0 || put_u64(&canon, timestamp) < 0 ||
        put_str(&canon, "\",\"trace\":\"") < 0)
        goto done;
    if (put_hex(&canon, (const unsigned char *)PyBytes_AS_STRING(trace),
                PyBytes_GET_SIZE(trace)) < 0)
        goto done;
    if (put_str(&canon, "\",\"v\":1}") < 0) goto done;

    PyObject *message = PyBytes_FromStringAndSize(wire.data ? wire.data : "", wire.len);
    PyObject *canonical = message ? PyBytes_FromStringAndSize(canon.data, canon.len) : NULL;
    if (canonical != NULL) {
        result = PyTuple_Pack(2, message, canonical);
    }
    Py_XDECREF(message);
    Py_XDECREF(canonical);
done:
    buf_free(&wire);
    buf_free(&canon);
    buf_free(&body);
    buf_free(&body_text);
    return result;
}

PyDoc_STRVAR(configure_doc,
             "configure(unencodable, max_depth, max_items, skip_prefix)\n"
             "--\n\n"
             "Set the exception class for refused values, the export bounds, and the\n"
             "attribute-key prefix left to the integrity chain. Call once, at import.");

static PyObject *configure(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *cls, *prefix;
    int depth;
    Py_ssize_t items;
    if (!PyArg_ParseTuple(args, "OinU:configure", &cls, &depth, &items, &prefix)) return NULL;
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls,
                                                 (PyTypeObject *)PyExc_Exception)) {
        PyErr_SetString(PyExc_TypeError, "unencodable must be an Exception subclass");
        return NULL;
    }
    if (depth < 0 || items < 0) {
        PyErr_SetString(PyExc_ValueError, "bounds must be non-negative");
        return NULL;
    }
    Py_INCREF(cls);
    Py_XSETREF(unencodable, cls);
    Py_INCREF(prefix);
    Py_XSETREF(skip_prefix, prefix);
    max_depth = depth;
    max_items = items;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"encode_record", (PyCFunction)(void (*)(void))encode_record, METH_FASTCALL, encode_record_doc},
    {"configure", configure, METH_VARARGS, configure_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "otel_audit_otlpwire",
    "OTLP LogRecord encoding and integrity canonical form for otel-audit's durable export.",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit_otel_audit_otlpwire(void) { return PyModule_Create(&module); }
