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
 * Readings of one series at one time share a line (docs/data-model.md): the grouping is that
 * of format.py's `line_groups`, which the Python path and the tests use.
 *
 * lines(flat, base, table, overrides) -> str | None
 *   flat:      the message's `r` list: alias, dt, value, alias, dt, value, ...
 *   base:      the message's base time (ms); reading k's time is base + dt[0] + ... + dt[k]
 *   table:     (entries, series count, slot count); entries is a list indexed by alias: None or
 *              (prefix: bytes, nil: bytes, meta: bytes); prefix is `series field=`, nil is the
 *              whole `series field_err="nil"`, meta five native int32s (read without a call):
 *              kind, decimals, series, cut, slot. cut is the bytes of `series ` (a reading after
 *              the first in a line writes `,` and what follows); series and slot number the
 *              series and the (series, field) pairs of the birth
 *              kind 0: float metric (an int as is, a float as repr)
 *              kind 1: integer metric (an int with `i`)
 *              kind 2: scaled float metric (an int n as `ne-<decimals>`, a float as repr)
 *              kind 3: anything else (only nil values are handled here)
 *   overrides: None or a list of (index, text) sorted by index: the line of reading `index`
 *              alone up to its time, made by the caller (readings with a quality entry)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
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
/* Series and slots of one birth: at most one per alias, and aliases are below 65,536 here. */
#define MAX_COUNT 65536
/* Working space on the stack up to these sizes (about 20 KB), on the heap beyond. */
#define STACK_READINGS 256
#define STACK_COUNT 512

/* One reading, as the grouping pass read it from the table (checked there once). */
typedef struct {
    PyObject *prefix;  /* borrowed: `series field=` */
    PyObject *nil;     /* borrowed: `series field_err="nil"` */
    PyObject *text;    /* borrowed: the override's str, or NULL */
    Py_ssize_t next;   /* the next reading of its line, or -1 */
    int32_t cut;       /* bytes of the series (with its space) at the start of a piece */
    int32_t kind;
    int32_t decimals;
} Slot;

/* An entry's numbers (`meta`, native int32s): kind, decimals, series, cut, slot. */
enum { META_KIND, META_DECIMALS, META_SERIES, META_CUT, META_SLOT, META_COUNT };

/* An exact int of a table entry, without running Python code (__index__): -1 if not one. */
static Py_ssize_t
entry_int(PyObject *entry, Py_ssize_t at)
{
    PyObject *obj = PyTuple_GET_ITEM(entry, at);
    if (!PyLong_CheckExact(obj)) {
        return -1;
    }
    Py_ssize_t v = PyLong_AsSsize_t(obj);
    if (v == -1) {
        PyErr_Clear();
    }
    return v;
}

/* `s` from byte `cut` on, after a `,` unless it starts the line; room for a number and a time after it. */
static inline int
put_part(Buffer *buf, const char *s, Py_ssize_t size, Py_ssize_t cut, int head)
{
    if (buffer_reserve(buf, size + NUMBER_ROOM) < 0) {
        return FAILED;
    }
    if (!head) {
        buf->data[buf->len++] = ',';
    }
    put(buf, s + cut, size - cut);
    return DONE;
}

/* Reading i's part of a line: the whole piece at the head of a line, else `,` and what
 * follows its series. Returns DONE, DECLINE or FAILED. */
static inline int
put_reading(Buffer *buf, PyObject *flat, Py_ssize_t i, const Slot *slot, int head)
{
    PyObject *value = PyList_GET_ITEM(flat, 3 * i + 2);
    Py_ssize_t cut = head ? 0 : slot->cut;
    int kind = slot->kind;
    if (slot->text != NULL) {
        Py_ssize_t size;
        const char *utf8 = PyUnicode_Check(slot->text) ? PyUnicode_AsUTF8AndSize(slot->text, &size) : NULL;
        if (utf8 == NULL || size < slot->cut) {
            PyErr_Clear();
            return DECLINE;
        }
        return put_part(buf, utf8, size, cut, head);
    }
    if (value == Py_None) {
        return put_part(buf, PyBytes_AS_STRING(slot->nil), PyBytes_GET_SIZE(slot->nil), cut, head);
    }
    const char *prefix = PyBytes_AS_STRING(slot->prefix);
    Py_ssize_t prefix_size = PyBytes_GET_SIZE(slot->prefix);
    if (PyLong_CheckExact(value) && kind != OTHER) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow || (v == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return DECLINE;
        }
        if (put_part(buf, prefix, prefix_size, cut, head) < 0) {
            return FAILED;
        }
        put_int(buf, v);
        if (kind == INTEGER) {
            buf->data[buf->len++] = 'i';
        }
        else if (kind == SCALED) {
            put(buf, "e-", 2);
            put_int(buf, slot->decimals);
        }
        return DONE;
    }
    if (PyFloat_CheckExact(value) && (kind == FLOAT || kind == SCALED)) {
        double x = PyFloat_AS_DOUBLE(value);
        if (!isfinite(x)) {
            return DECLINE;
        }
        if (put_part(buf, prefix, prefix_size, cut, head) < 0 || put_float(buf, x) < 0 ||
            buffer_reserve(buf, NUMBER_ROOM) < 0) {
            return FAILED;
        }
        return DONE;
    }
    return DECLINE; /* bool, str, a float for an integer metric, ...: Python decides */
}

/* The grouping of format.py's line_groups: in a run of one time, a reading joins the latest
 * line of its series unless that line holds its slot already; then it starts a new line at
 * the end of the run. Lines are numbered from 1 over the message, so `series_line` and
 * `slot_line` never need clearing: a line of an earlier run is below the run's first. */
static int
format_message(PyObject *flat, long long now, PyObject *table, Py_ssize_t series_count,
               Py_ssize_t slot_count, PyObject *overrides, Buffer *buf)
{
    Py_ssize_t n = PyList_GET_SIZE(flat) / 3;
    Py_ssize_t entries = PyList_GET_SIZE(table);
    Py_ssize_t override_count = overrides == Py_None ? 0 : PyList_GET_SIZE(overrides);
    /* per reading: its Slot; per line (from 1): first and last reading; per series and slot: a line.
     * On the stack for messages of the usual size (tens of readings, a birth's few hundred series). */
    Slot slots_here[STACK_READINGS];
    Py_ssize_t numbers_here[2 * (STACK_READINGS + 1) + 2 * STACK_COUNT];
    size_t numbers_size = (size_t)(2 * (n + 1) + series_count + slot_count);
    Slot *slots = n <= STACK_READINGS ? slots_here : PyMem_Malloc((size_t)n * sizeof(Slot));
    Py_ssize_t *numbers = numbers_size <= sizeof(numbers_here) / sizeof(numbers_here[0])
                          ? numbers_here : PyMem_Malloc(numbers_size * sizeof(Py_ssize_t));
    if (slots == NULL || numbers == NULL) {
        if (slots != slots_here) {
            PyMem_Free(slots);
        }
        if (numbers != numbers_here) {
            PyMem_Free(numbers);
        }
        PyErr_NoMemory();
        return FAILED;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        slots[k].text = NULL;
    }
    Py_ssize_t *first = numbers, *last = numbers + n + 1;
    Py_ssize_t *series_line = numbers + 2 * (n + 1), *slot_line = series_line + series_count;
    memset(series_line, 0, (size_t)(series_count + slot_count) * sizeof(Py_ssize_t));
    int status = DONE;
    Py_ssize_t previous = -1;
    for (Py_ssize_t k = 0; k < override_count && status == DONE; k++) {
        PyObject *pair = PyList_GET_ITEM(overrides, k);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2 || !PyLong_CheckExact(PyTuple_GET_ITEM(pair, 0))) {
            status = DECLINE;
            break;
        }
        Py_ssize_t index = PyLong_AsSsize_t(PyTuple_GET_ITEM(pair, 0));
        if (index == -1 && PyErr_Occurred()) {
            PyErr_Clear();
        }
        if (index <= previous || index >= n) {
            status = DECLINE; /* unsorted, twice, or a piece for a reading that is not there */
            break;
        }
        slots[index].text = PyTuple_GET_ITEM(pair, 1);
        previous = index;
    }

    Py_ssize_t lines = 0;
    long long next_dt = 0;
    int have_next = 0;
    char time_text[24];
    Py_ssize_t i = 0;
    while (i < n && status == DONE) {
        Py_ssize_t run_first = lines + 1;
        Py_ssize_t j = i;
        for (; j < n; j++) { /* the run: reading i and those after it with dt = 0 */
            PyObject *alias_obj = PyList_GET_ITEM(flat, 3 * j);
            int overflow = 0;
            long long dt = next_dt;
            if (j > i || !have_next) { /* (the dt that ended the last run is read already) */
                PyObject *dt_obj = PyList_GET_ITEM(flat, 3 * j + 1);
                if (!PyLong_CheckExact(alias_obj) || !PyLong_CheckExact(dt_obj)) {
                    status = DECLINE;
                    break;
                }
                dt = PyLong_AsLongLongAndOverflow(dt_obj, &overflow);
                if (overflow || (dt == -1 && PyErr_Occurred())) {
                    PyErr_Clear();
                    status = DECLINE;
                    break;
                }
                if (j > i && dt != 0) {
                    next_dt = dt; /* the next run starts here */
                    have_next = 1;
                    break;
                }
            }
            have_next = 0;
            if (__builtin_add_overflow(now, dt, &now) || now > MAX_TIME_MS || now < -MAX_TIME_MS) {
                status = DECLINE; /* Python names the reading (roadpulse.wire.types.MAX_TIME_MS) */
                break;
            }
            long long alias = PyLong_AsLongLongAndOverflow(alias_obj, &overflow);
            if (overflow || alias < 0 || alias >= entries) {
                PyErr_Clear();
                status = DECLINE;
                break;
            }
            PyObject *entry = PyList_GET_ITEM(table, alias);
            if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 3) {
                status = DECLINE; /* None: an alias this birth does not define */
                break;
            }
            PyObject *prefix = PyTuple_GET_ITEM(entry, 0), *nil = PyTuple_GET_ITEM(entry, 1);
            PyObject *meta_obj = PyTuple_GET_ITEM(entry, 2);
            if (!PyBytes_CheckExact(prefix) || !PyBytes_CheckExact(nil) || !PyBytes_CheckExact(meta_obj) ||
                PyBytes_GET_SIZE(meta_obj) != (Py_ssize_t)sizeof(int32_t[META_COUNT])) {
                status = DECLINE;
                break;
            }
            int32_t meta[META_COUNT];
            memcpy(meta, PyBytes_AS_STRING(meta_obj), sizeof(meta));
            int32_t series = meta[META_SERIES], slot = meta[META_SLOT], cut = meta[META_CUT];
            if (meta[META_KIND] < FLOAT || meta[META_KIND] > OTHER ||
                (meta[META_KIND] == SCALED && meta[META_DECIMALS] <= 0) ||
                series < 0 || series >= series_count || slot < 0 || slot >= slot_count || cut < 0 ||
                cut > PyBytes_GET_SIZE(prefix) || cut > PyBytes_GET_SIZE(nil)) {
                status = DECLINE;
                break;
            }
            slots[j].prefix = prefix;
            slots[j].nil = nil;
            slots[j].kind = meta[META_KIND];
            slots[j].decimals = meta[META_DECIMALS];
            slots[j].cut = cut;
            slots[j].next = -1;
            Py_ssize_t line = series_line[series];
            if (line < run_first || slot_line[slot] == line) {
                line = ++lines;
                first[line] = j;
                series_line[series] = line;
            }
            else {
                slots[last[line]].next = j;
            }
            last[line] = j;
            slot_line[slot] = line;
        }
        if (status != DONE) {
            break;
        }
        Py_ssize_t time_len = 0;
        {
            Buffer tmp = {time_text, 0, sizeof(time_text)};
            put_int(&tmp, now);
            time_len = tmp.len;
        }
        for (Py_ssize_t line = run_first; line <= lines && status == DONE; line++) {
            for (Py_ssize_t r = first[line]; r >= 0 && status == DONE; r = slots[r].next) {
                status = put_reading(buf, flat, r, &slots[r], r == first[line]);
            }
            if (status == DONE) { /* room: put_reading reserved NUMBER_ROOM past its piece */
                buf->data[buf->len++] = ' ';
                put(buf, time_text, time_len);
                buf->data[buf->len++] = '\n';
            }
        }
        i = j;
    }
    if (status == DONE && buf->len > 0) {
        buf->len--; /* the last newline */
    }
    if (slots != slots_here) {
        PyMem_Free(slots);
    }
    if (numbers != numbers_here) {
        PyMem_Free(numbers);
    }
    return status;
}

static PyObject *
lines(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "lines(flat, base, table, overrides) takes 4 arguments");
        return NULL;
    }
    PyObject *flat = args[0], *base = args[1], *native = args[2], *overrides = args[3];
    if (!PyList_CheckExact(flat) || !PyTuple_CheckExact(native) || PyTuple_GET_SIZE(native) != 3 ||
        !PyList_CheckExact(PyTuple_GET_ITEM(native, 0)) ||
        !(overrides == Py_None || PyList_CheckExact(overrides))) {
        PyErr_SetString(PyExc_TypeError,
                        "lines: flat must be a list, table (list, series, slots), overrides a list or None");
        return NULL;
    }
    PyObject *table = PyTuple_GET_ITEM(native, 0);
    Py_ssize_t series_count = entry_int(native, 1), slot_count = entry_int(native, 2);
    if (series_count < 0 || slot_count < 0 || series_count > MAX_COUNT || slot_count > MAX_COUNT ||
        !PyLong_CheckExact(base) || PyList_GET_SIZE(flat) % 3) {
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
    if (buffer_reserve(&buf, (n < 65536 ? n : 65536) * 64) < 0) {
        return NULL;
    }
    int status = format_message(flat, now, table, series_count, slot_count, overrides, &buf);
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
