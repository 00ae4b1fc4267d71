/* The collector's hot loop in C: a data message's flat readings to line protocol.
 *
 * Why C: after every Python-level trick (collector/output/influxdb/format.py, data_lines), CPython's own
 * per-reading work (the `%` over a message's templates, type checks, int and float
 * formatting) was most of the collector's CPU. Here each reading costs a few branches, one
 * memcpy of its series prefix and one number formatted into a buffer.
 *
 * The contract is narrow on purpose. `lines` handles only the ordinary case and returns
 * None for anything else, and the caller then runs the Python path, which decides what the
 * message means (errors, unknown aliases, odd value types, non-finite floats, ints beyond
 * 64 bits). So this file never decides validity: it can only be faster, never different.
 * tests/collector/test_fastlines.py holds the two paths to the same text on generated input.
 *
 * lines(flat, base, table, overrides) -> str | None
 *   flat:      the message's `r` list: alias, dt, value, alias, dt, value, ...
 *   base:      the message's base time (ms); reading k's time is base + dt[0] + ... + dt[k]
 *   table:     list indexed by alias: None or (prefix: bytes, kind: int, decimals: int, nil: bytes)
 *              prefix is `series field=`, nil is the whole `series field_err="nil"`
 *              kind 0: float metric (an int as is, a float as repr)
 *              kind 1: integer metric (an int with `i`)
 *              kind 2: scaled float metric (an int n as `ne-<decimals>`, a float as repr)
 *              kind 3: anything else (only nil values are handled here)
 *   overrides: None or a list of (index, text) sorted by index: the line of reading `index`
 *              up to its time, made by the caller (readings with a quality entry)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} Buffer;

static int
buffer_reserve(Buffer *buf, Py_ssize_t extra)
{
    if (buf->len + extra <= buf->cap) {
        return 0;
    }
    Py_ssize_t cap = buf->cap * 2;
    if (cap < buf->len + extra) {
        cap = buf->len + extra;
    }
    char *data = PyMem_Realloc(buf->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    buf->data = data;
    buf->cap = cap;
    return 0;
}

static const char DIGIT_PAIRS[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Decimal digits of v into the buffer (room already reserved: 20 bytes), two at a time. */
static void
put_int(Buffer *buf, long long v)
{
    char tmp[24];
    char *end = tmp + sizeof(tmp);
    char *p = end;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    while (u >= 100) {
        unsigned pair = (unsigned)(u % 100) * 2;
        u /= 100;
        *--p = DIGIT_PAIRS[pair + 1];
        *--p = DIGIT_PAIRS[pair];
    }
    if (u >= 10) {
        *--p = DIGIT_PAIRS[u * 2 + 1];
        *--p = DIGIT_PAIRS[u * 2];
    }
    else {
        *--p = (char)('0' + u);
    }
    if (v < 0) {
        *--p = '-';
    }
    memcpy(buf->data + buf->len, p, (size_t)(end - p));
    buf->len += end - p;
}

static void
put(Buffer *buf, const char *s, Py_ssize_t n)
{
    memcpy(buf->data + buf->len, s, (size_t)n);
    buf->len += n;
}

/* repr(x) into the buffer, exactly as float.__repr__ writes it. 0 on success. */
static int
put_float(Buffer *buf, double x)
{
    char *text = PyOS_double_to_string(x, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (text == NULL) {
        return -1;
    }
    Py_ssize_t n = (Py_ssize_t)strlen(text);
    if (buffer_reserve(buf, n) < 0) {
        PyMem_Free(text);
        return -1;
    }
    put(buf, text, n);
    PyMem_Free(text);
    return 0;
}

enum { FLOAT = 0, INTEGER = 1, SCALED = 2, OTHER = 3 };
enum { DONE = 0, DECLINE = 1, FAILED = -1 };

/* Room for a number (sign and 20 digits), a suffix (`e-` and up to 20 digits), a space and
 * a time (sign and 20 digits), and a newline. */
#define NUMBER_ROOM 80
/* Times InfluxDB can hold, in ms (int64 nanoseconds): as roadpulse.wire.types.MAX_TIME_MS. */
#define MAX_TIME_MS 9223372036854LL

static int
format_message(PyObject *flat, long long now, PyObject *table, PyObject *overrides, Buffer *buf)
{
    Py_ssize_t n = PyList_GET_SIZE(flat) / 3;
    Py_ssize_t entries = PyList_GET_SIZE(table);
    Py_ssize_t next_override = -1, override_pos = 0, override_count = 0;
    long long last_time = 0;
    char last_time_text[24];
    Py_ssize_t last_time_len = 0;
    if (overrides != Py_None) {
        override_count = PyList_GET_SIZE(overrides);
    }

    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *alias_obj = PyList_GET_ITEM(flat, 3 * i);
        PyObject *dt_obj = PyList_GET_ITEM(flat, 3 * i + 1);
        PyObject *value = PyList_GET_ITEM(flat, 3 * i + 2);
        if (!PyLong_CheckExact(alias_obj) || !PyLong_CheckExact(dt_obj)) {
            return DECLINE;
        }
        int overflow = 0;
        long long dt = PyLong_AsLongLongAndOverflow(dt_obj, &overflow);
        if (overflow || (dt == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return DECLINE;
        }
        if (__builtin_add_overflow(now, dt, &now) || now > MAX_TIME_MS || now < -MAX_TIME_MS) {
            return DECLINE;  /* Python names the reading (roadpulse.wire.types.MAX_TIME_MS) */
        }
        long long alias = PyLong_AsLongLongAndOverflow(alias_obj, &overflow);
        if (overflow || alias < 0 || alias >= entries) {
            PyErr_Clear();
            return DECLINE;
        }
        PyObject *entry = PyList_GET_ITEM(table, alias);
        if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 4) {
            return DECLINE; /* None: an alias this birth does not define */
        }

        if (next_override < i && override_pos < override_count) {
            PyObject *pair = PyList_GET_ITEM(overrides, override_pos);
            if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) {
                return DECLINE;
            }
            next_override = PyLong_AsSsize_t(PyTuple_GET_ITEM(pair, 0));
            if (next_override == -1 && PyErr_Occurred()) {
                PyErr_Clear();
                return DECLINE;
            }
        }
        if (next_override == i) {
            PyObject *text = PyTuple_GET_ITEM(PyList_GET_ITEM(overrides, override_pos), 1);
            Py_ssize_t size;
            const char *utf8 = PyUnicode_Check(text) ? PyUnicode_AsUTF8AndSize(text, &size) : NULL;
            if (utf8 == NULL) {
                PyErr_Clear();
                return DECLINE;
            }
            if (buffer_reserve(buf, size + NUMBER_ROOM) < 0) {
                return FAILED;
            }
            put(buf, utf8, size);
            override_pos++;
        }
        else {
            PyObject *prefix = PyTuple_GET_ITEM(entry, 0);
            PyObject *nil = PyTuple_GET_ITEM(entry, 3);
            PyObject *kind_obj = PyTuple_GET_ITEM(entry, 1);
            /* Exact ints only: on anything else PyLong_AsLong calls __index__, Python code that
             * could free the items of flat, table or overrides we hold borrowed. */
            long kind = PyLong_CheckExact(kind_obj) ? PyLong_AsLong(kind_obj) : -1;
            if (!PyBytes_CheckExact(prefix) || !PyBytes_CheckExact(nil) || kind < FLOAT || kind > OTHER) {
                PyErr_Clear();
                return DECLINE;
            }
            if (value == Py_None) {
                if (buffer_reserve(buf, PyBytes_GET_SIZE(nil) + NUMBER_ROOM) < 0) {
                    return FAILED;
                }
                put(buf, PyBytes_AS_STRING(nil), PyBytes_GET_SIZE(nil));
            }
            else if (PyLong_CheckExact(value) && kind != OTHER) {
                long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
                if (overflow || (v == -1 && PyErr_Occurred())) {
                    PyErr_Clear();
                    return DECLINE;
                }
                if (buffer_reserve(buf, PyBytes_GET_SIZE(prefix) + NUMBER_ROOM) < 0) {
                    return FAILED;
                }
                put(buf, PyBytes_AS_STRING(prefix), PyBytes_GET_SIZE(prefix));
                put_int(buf, v);
                if (kind == INTEGER) {
                    buf->data[buf->len++] = 'i';
                }
                else if (kind == SCALED) {
                    PyObject *decimals_obj = PyTuple_GET_ITEM(entry, 2);
                    long decimals = PyLong_CheckExact(decimals_obj) ? PyLong_AsLong(decimals_obj) : -1;
                    if (decimals <= 0) {
                        PyErr_Clear();
                        return DECLINE;
                    }
                    put(buf, "e-", 2);
                    put_int(buf, decimals);
                }
            }
            else if (PyFloat_CheckExact(value) && (kind == FLOAT || kind == SCALED)) {
                double x = PyFloat_AS_DOUBLE(value);
                if (!isfinite(x)) {
                    return DECLINE;
                }
                if (buffer_reserve(buf, PyBytes_GET_SIZE(prefix) + NUMBER_ROOM) < 0) {
                    return FAILED;
                }
                put(buf, PyBytes_AS_STRING(prefix), PyBytes_GET_SIZE(prefix));
                if (put_float(buf, x) < 0) {
                    return FAILED;
                }
                if (buffer_reserve(buf, NUMBER_ROOM) < 0) {
                    return FAILED;
                }
            }
            else {
                return DECLINE; /* bool, str, a float for an integer metric, ...: Python decides */
            }
        }
        buf->data[buf->len++] = ' ';
        if (now != last_time || last_time_len == 0) { /* readings of one poll share a time */
            Py_ssize_t start = buf->len;
            put_int(buf, now);
            last_time = now;
            last_time_len = buf->len - start;
            memcpy(last_time_text, buf->data + start, (size_t)last_time_len);
        }
        else {
            put(buf, last_time_text, last_time_len);
        }
        if (i + 1 < n) {
            buf->data[buf->len++] = '\n';
        }
    }
    return override_pos == override_count ? DONE : DECLINE;
}

static PyObject *
lines(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "lines(flat, base, table, overrides) takes 4 arguments");
        return NULL;
    }
    PyObject *flat = args[0], *base = args[1], *table = args[2], *overrides = args[3];
    if (!PyList_CheckExact(flat) || !PyList_CheckExact(table) ||
        !(overrides == Py_None || PyList_CheckExact(overrides))) {
        PyErr_SetString(PyExc_TypeError, "lines: flat and table must be lists, overrides a list or None");
        return NULL;
    }
    if (!PyLong_CheckExact(base) || PyList_GET_SIZE(flat) % 3) {
        Py_RETURN_NONE;
    }
    int overflow = 0;
    long long now = PyLong_AsLongLongAndOverflow(base, &overflow);
    if (overflow || (now == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    Py_ssize_t n = PyList_GET_SIZE(flat) / 3;
    if (n == 0) {
        if (overrides != Py_None && PyList_GET_SIZE(overrides) > 0) {
            Py_RETURN_NONE; /* a piece for a reading that is not there */
        }
        return PyUnicode_FromStringAndSize("", 0);
    }
    Buffer buf = {NULL, 0, 0};
    /* A first guess, not a bound (the buffer grows): n comes from an untrusted message. */
    if (buffer_reserve(&buf, (n < 65536 ? n : 65536) * 96) < 0) {
        return NULL;
    }
    int status = format_message(flat, now, table, overrides, &buf);
    PyObject *result = NULL;
    if (status == DONE) {
        result = PyUnicode_DecodeUTF8(buf.data, buf.len, "strict");
    }
    else if (status == DECLINE) {
        result = Py_NewRef(Py_None);
    }
    PyMem_Free(buf.data);
    return result;
}

static PyMethodDef methods[] = {
    {"lines", (PyCFunction)(void (*)(void))lines, METH_FASTCALL,
     "lines(flat, base, table, overrides) -> str | None: a data message's lines, or None to decline."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "collector._fastlines",
    "The collector's hot loop in C (see collector/output/influxdb/format.py, data_lines).", -1, methods,
};

PyMODINIT_FUNC
PyInit__fastlines(void)
{
    return PyModule_Create(&module);
}
