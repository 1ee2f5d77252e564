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
 */
#include <Python.h>
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
    void *const *value_items = sequence_items(values, count);
    void *const *key_items = keys != NULL ? sequence_items(keys, count) : NULL;
    int rc = LS_ERR_INVALID_ARGUMENT;
    *keys_bytes = 0;
    if (value_items != NULL && (keys == NULL || key_items != NULL)) {
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
    void *const *value_items = sequence_items(values, count);
    void *const *key_items = keys != NULL ? sequence_items(keys, count) : NULL;
    int rc = LS_ERR_INVALID_ARGUMENT;
    if (value_items != NULL && (keys == NULL || key_items != NULL)) {
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
    void *const *value_items = sequence_items(values, count);
    void *const *key_items = keys != NULL ? sequence_items(keys, count) : NULL;
    int rc = LS_ERR_INVALID_ARGUMENT;
    if (value_items != NULL && (keys == NULL || key_items != NULL)) {
        rc = ls_records_encode_items(out, cap, written, count, base_timestamp, timestamps,
                                     key_items, value_items, headers, headers_lengths);
    }
    PyGILState_Release(gil);
    return rc;
}
