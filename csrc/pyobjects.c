/*
 * pyobjects.c: encoding records straight from Python lists of bytes objects.
 *
 * The Python side passes the address of a list (or tuple) of keys and one of values, as
 * `id(seq)` cast to void *. Each item must be a `bytes` object or None (a null field); anything
 * else gives LS_ERR_INVALID_ARGUMENT and the caller uses its copying path (bytearray, memoryview,
 * wrong types with a precise error message).
 *
 * GIL: these are the only C functions that run holding the GIL. cffi releases it around every
 * call; they take it back with PyGILState_Ensure for their whole duration, so no other thread can
 * mutate or free the sequences while their item buffers are read in place. The work done under
 * it is one memcpy and one CRC of the batch (about 100 us per MiB), well below Python's switch
 * interval. No reference counts change and nothing is allocated.
 *
 * ls_records_build_objects goes the other way, for the consumer: it decodes a records region and
 * creates one object per record (bytes for keys and values, ints, header tuples, and an instance
 * of a __slots__ class whose slots it fills in place, as a C extension type's constructor would).
 * Everything it creates is owned by Python; on any failure it drops what it made, clears the
 * Python error and returns a code.
 */
#include <Python.h>
#include <structmember.h>

#include "ls_internal.h"

static int object_bytes(PyObject *o, const uint8_t **data, int32_t *length) {
    if (o == Py_None) {
        *data = NULL;
        *length = -1;
        return LS_OK;
    }
    if (!PyBytes_CheckExact(o) || PyBytes_GET_SIZE(o) > INT32_MAX) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    *data = (const uint8_t *)PyBytes_AS_STRING(o);
    *length = (int32_t)PyBytes_GET_SIZE(o);
    return LS_OK;
}

int ls_object_bytes(void *object, const uint8_t **data, int32_t *length) {
    if (object == NULL || data == NULL || length == NULL) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    return object_bytes((PyObject *)object, data, length);
}

/* The item array of a list or tuple of exactly `count` items; NULL otherwise. GIL held. */
static void *const *sequence_items(void *sequence, int32_t count) {
    PyObject *seq = (PyObject *)sequence;
    if (seq == NULL || !(PyList_CheckExact(seq) || PyTuple_CheckExact(seq)) ||
        PySequence_Fast_GET_SIZE(seq) != (Py_ssize_t)count) {
        return NULL;
    }
    return (void *const *)PySequence_Fast_ITEMS(seq);
}

/* The item arrays of `values` and of `keys` (NULL: no keys, *key_items NULL), each a list or
 * tuple of exactly `count` items; LS_ERR_INVALID_ARGUMENT otherwise. GIL held. */
static int sequences_items(void *keys, void *values, int32_t count, void *const **key_items,
                           void *const **value_items) {
    *value_items = sequence_items(values, count);
    *key_items = keys != NULL ? sequence_items(keys, count) : NULL;
    return *value_items != NULL && (keys == NULL || *key_items != NULL)
               ? LS_OK
               : LS_ERR_INVALID_ARGUMENT;
}

static int items_size(void *const *items, int32_t count, int64_t *total) {
    int64_t sum = 0;
    for (int32_t i = 0; i < count; i++) {
        const uint8_t *data;
        int32_t length;
        if (object_bytes((PyObject *)items[i], &data, &length) != LS_OK) {
            return LS_ERR_INVALID_ARGUMENT;
        }
        sum += length > 0 ? length : 0;
    }
    *total = sum;
    return LS_OK;
}

int ls_sequences_size(void *keys, void *values, int32_t count, int64_t *keys_bytes,
                      int64_t *values_bytes) {
    if (values == NULL || count < 0 || keys_bytes == NULL || values_bytes == NULL) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    PyGILState_STATE gil = PyGILState_Ensure();
    void *const *key_items;
    void *const *value_items;
    int rc = sequences_items(keys, values, count, &key_items, &value_items);
    *keys_bytes = 0;
    if (rc == LS_OK) {
        rc = items_size(value_items, count, values_bytes);
        if (rc == LS_OK && key_items != NULL) {
            rc = items_size(key_items, count, keys_bytes);
        }
    }
    PyGILState_Release(gil);
    return rc;
}

int ls_batch_build_sequences(uint8_t *out, size_t cap, size_t *written, ls_batch_header *h,
                             int32_t count, const int64_t *timestamps, void *keys, void *values,
                             const uint8_t *headers, const int32_t *headers_lengths) {
    if (values == NULL) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    PyGILState_STATE gil = PyGILState_Ensure();
    void *const *key_items;
    void *const *value_items;
    int rc = sequences_items(keys, values, count, &key_items, &value_items);
    if (rc == LS_OK) {
        rc = ls_batch_build_items(out, cap, written, h, count, timestamps, key_items,
                                  value_items, headers, headers_lengths);
    }
    PyGILState_Release(gil);
    return rc;
}

int ls_records_encode_sequences(uint8_t *out, size_t cap, size_t *written, int32_t count,
                                int64_t base_timestamp, const int64_t *timestamps, void *keys,
                                void *values, const uint8_t *headers,
                                const int32_t *headers_lengths) {
    if (values == NULL) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    PyGILState_STATE gil = PyGILState_Ensure();
    void *const *key_items;
    void *const *value_items;
    int rc = sequences_items(keys, values, count, &key_items, &value_items);
    if (rc == LS_OK) {
        rc = ls_records_encode_items(out, cap, written, count, base_timestamp, timestamps,
                                     key_items, value_items, headers, headers_lengths);
    }
    PyGILState_Release(gil);
    return rc;
}

/* ----------------------------------------------------------------------------------------------
 * Records to objects (the consumer's message construction).
 */

enum {
    RECORD_FIELDS = 5,            /* offset, key, value, headers, timestamp */
    OBJECT_SLOTS_MAX = 32
};

typedef struct {
    PyTypeObject *type;
    Py_ssize_t offsets[OBJECT_SLOTS_MAX];
    Py_ssize_t slot_count;
    PyObject *constants;          /* tuple: values of slots RECORD_FIELDS.. */
} object_plan;

/* The byte offset of a writable object slot of `type` from its member descriptor. */
static int slot_offset(PyTypeObject *type, PyObject *descriptor, Py_ssize_t *offset) {
    if (Py_TYPE(descriptor) != &PyMemberDescr_Type) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    PyMemberDescrObject *member = (PyMemberDescrObject *)descriptor;
    if (!PyType_IsSubtype(type, PyDescr_TYPE(descriptor)) ||
        member->d_member->type != T_OBJECT_EX || (member->d_member->flags & READONLY)) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    *offset = member->d_member->offset;
    return LS_OK;
}

static int object_plan_make(void *type, void *slots, void *constants, object_plan *plan) {
    PyObject *t = (PyObject *)type, *s = (PyObject *)slots, *c = (PyObject *)constants;
    if (t == NULL || s == NULL || c == NULL || !PyType_Check(t) || !PyTuple_CheckExact(s) ||
        !PyTuple_CheckExact(c)) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(s);
    if (n > OBJECT_SLOTS_MAX || n != RECORD_FIELDS + PyTuple_GET_SIZE(c)) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    plan->type = (PyTypeObject *)t;
    plan->slot_count = n;
    plan->constants = c;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (slot_offset(plan->type, PyTuple_GET_ITEM(s, i), &plan->offsets[i]) != LS_OK) {
            return LS_ERR_INVALID_ARGUMENT;
        }
    }
    return LS_OK;
}

/* bytes for a field of `length` bytes at data (None for -1). New reference or NULL. */
static PyObject *field_object(const uint8_t *data, int32_t length) {
    if (length < 0) {
        return Py_NewRef(Py_None);
    }
    return PyBytes_FromStringAndSize((const char *)data, length);
}

/* The headers of a record (already validated by ls_record_read) as a list of tuples. */
static PyObject *headers_object(const uint8_t *buf, const ls_record *r, int *rc) {
    if (r->headers_count == 0) {
        return Py_NewRef(Py_None);
    }
    PyObject *list = PyList_New(r->headers_count);
    if (list == NULL) {
        return NULL;
    }
    const uint8_t *p = buf + r->headers_offset;
    size_t len = (size_t)r->headers_length, pos = 0;
    for (int32_t i = 0; i < r->headers_count; i++) {
        int32_t key_length, value_length;
        if (ls_get_varint(p, len, &pos, &key_length) != LS_OK || key_length < 0 ||
            (size_t)key_length > len - pos) {
            *rc = LS_ERR_INVALID_RECORD;
            Py_DECREF(list);
            return NULL;
        }
        const uint8_t *key = p + pos;
        pos += (size_t)key_length;
        if (ls_get_varint(p, len, &pos, &value_length) != LS_OK || value_length < -1 ||
            (value_length > 0 && (size_t)value_length > len - pos)) {
            *rc = LS_ERR_INVALID_RECORD;
            Py_DECREF(list);
            return NULL;
        }
        /* As Java's new String(bytes, UTF_8) and the Python decoder: invalid sequences become
         * U+FFFD rather than failing the record. */
        PyObject *name = PyUnicode_DecodeUTF8((const char *)key, key_length, "replace");
        if (name == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyObject *value = field_object(p + pos, value_length);
        pos += value_length > 0 ? (size_t)value_length : 0;
        PyObject *pair = value == NULL ? NULL : PyTuple_Pack(2, name, value);
        Py_DECREF(name);
        Py_XDECREF(value);
        if (pair == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, pair);
    }
    return list;
}

/* One object for record r; a new reference, or NULL with *rc set (or a Python error set).
 * timestamp: a reference to lend to the object (records of a batch mostly share one). */
static PyObject *record_object(const object_plan *plan, const uint8_t *buf, const ls_record *r,
                               int64_t offset, PyObject *timestamp, int *rc) {
    PyObject *fields[RECORD_FIELDS];
    fields[0] = PyLong_FromLongLong(offset);
    fields[1] = fields[0] ? field_object(buf + r->key_offset, r->key_length) : NULL;
    fields[2] = fields[1] ? field_object(buf + r->value_offset, r->value_length) : NULL;
    fields[3] = fields[2] ? headers_object(buf, r, rc) : NULL;
    fields[4] = fields[3] ? Py_NewRef(timestamp) : NULL;
    PyObject *obj = fields[4] ? plan->type->tp_alloc(plan->type, 0) : NULL;
    for (int i = 0; i < RECORD_FIELDS; i++) {
        if (obj == NULL) {
            Py_XDECREF(fields[i]);
        } else {
            *(PyObject **)((char *)obj + plan->offsets[i]) = fields[i]; /* steals */
        }
    }
    if (obj != NULL) {
        for (Py_ssize_t i = RECORD_FIELDS; i < plan->slot_count; i++) {
            PyObject *value = PyTuple_GET_ITEM(plan->constants, i - RECORD_FIELDS);
            *(PyObject **)((char *)obj + plan->offsets[i]) = Py_NewRef(value);
        }
        /* Its fields are bytes, ints, str, None and a list of tuples: it cannot be part of a
         * reference cycle as built, so the cycle collector need not traverse it (CPython
         * untracks such tuples and dicts itself). Thousands of messages per fetch would
         * otherwise be scanned by every young-generation collection while they wait. */
        if (PyObject_IS_GC(obj)) {
            PyObject_GC_UnTrack(obj);
        }
    }
    return obj;
}

static int build_objects(const uint8_t *buf, size_t len, int32_t count, int64_t base_offset,
                         int64_t base_timestamp, int32_t log_append_time, int64_t max_timestamp,
                         int64_t min_offset, const object_plan *plan, PyObject *out,
                         int32_t *built) {
    size_t pos = 0;
    int64_t last_timestamp = 0;
    PyObject *timestamp_object = NULL;    /* the previous record's, reused while equal */
    int rc = LS_OK;
    for (int32_t i = 0; i < count && rc == LS_OK; i++) {
        ls_record r;
        rc = ls_record_read(buf, len, &pos, &r);
        if (rc != LS_OK || base_offset + r.offset_delta < min_offset) {
            continue;
        }
        int64_t offset = base_offset + r.offset_delta;
        int64_t timestamp = log_append_time ? max_timestamp : base_timestamp + r.timestamp_delta;
        if (timestamp_object == NULL || timestamp != last_timestamp) {
            Py_XDECREF(timestamp_object);
            timestamp_object = PyLong_FromLongLong(timestamp);
            last_timestamp = timestamp;
            if (timestamp_object == NULL) {
                rc = LS_ERR_INVALID_ARGUMENT;
                continue;
            }
        }
        rc = LS_ERR_INVALID_ARGUMENT;
        PyObject *obj = record_object(plan, buf, &r, offset, timestamp_object, &rc);
        if (obj == NULL) {
            continue;
        }
        rc = PyList_Append(out, obj) == 0 ? LS_OK : LS_ERR_INVALID_ARGUMENT;
        Py_DECREF(obj);
        *built += rc == LS_OK;
    }
    Py_XDECREF(timestamp_object);
    if (rc != LS_OK) {
        return rc;
    }
    return pos == len ? LS_OK : LS_ERR_INVALID_RECORD;
}

int ls_records_build_objects(const uint8_t *buf, size_t len, int32_t count, int64_t base_offset,
                             int64_t base_timestamp, int32_t log_append_time,
                             int64_t max_timestamp, int64_t min_offset, void *type, void *slots,
                             void *constants, void *out, int32_t *built) {
    if ((buf == NULL && len > 0) || len > (size_t)INT32_MAX || count < 0 || out == NULL ||
        built == NULL) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    if ((uint64_t)count * LS_RECORD_SIZE_MIN > len) {
        return LS_ERR_INVALID_RECORD;
    }
    *built = 0;
    PyGILState_STATE gil = PyGILState_Ensure();
    object_plan plan;
    int rc = object_plan_make(type, slots, constants, &plan);
    if (rc == LS_OK && !PyList_CheckExact((PyObject *)out)) {
        rc = LS_ERR_INVALID_ARGUMENT;
    }
    if (rc == LS_OK) {
        rc = build_objects(buf, len, count, base_offset, base_timestamp, log_append_time,
                           max_timestamp, min_offset, &plan, (PyObject *)out, built);
    }
    if (PyErr_Occurred()) {
        PyErr_Clear();
    }
    PyGILState_Release(gil);
    return rc;
}
