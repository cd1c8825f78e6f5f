/* Optional C speedups of the ledger core: the SHA-256 loops of RFC 6962 trees and proofs,
 * and the per-record hashing of commit_records (DESIGN §3).
 *
 * Why: each hashlib call costs ~0.3 µs of Python overhead around ~0.1 µs of SHA-256 (SHA-NI),
 * so a Python loop of hashes runs at the rate of bare hashlib calls and no faster. Here the
 * loops call OpenSSL's SHA-256 directly and release the GIL while they hash.
 *
 * parse_record is the fast path of ledger.records.parse_record: it validates a record's
 * JSON object against the schemas ledger.records hands over and writes its RFC 8785 bytes.
 *
 * Every function is also written in pure Python (ledger.merkle, ledger.commitment), which
 * stays the reference and the fallback when this module is not built; the Python callers
 * check their inputs and raise the library's typed errors before calling in here. The checks
 * below only keep this code memory-safe against anything else: wrong types and sizes raise
 * TypeError or ValueError. Property tests compare both paths byte for byte.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

/* SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, but they are the
 * fast ones: they call the SHA-NI block function directly, while EVP_Digest and, in
 * OpenSSL 3, the one-shot SHA256() fetch the algorithm from a provider on every call
 * (measured: SHA256() ~1.2 µs for a 65-byte node, SHA256_Init/Update/Final ~0.15 µs). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/sha.h>

#define HASH_SIZE 32

static const unsigned char KEY_DOMAIN[] = "credit-ledger:key:v1";
static const unsigned char COMMIT_DOMAIN[] = "credit-ledger:commit:v1";
static const unsigned char LEAF_PREFIX[] = "\x00" "credit-ledger:leaf:v1";
#define KEY_DOMAIN_LEN (sizeof(KEY_DOMAIN) - 1)
#define COMMIT_DOMAIN_LEN (sizeof(COMMIT_DOMAIN) - 1)
#define LEAF_PREFIX_LEN (sizeof(LEAF_PREFIX) - 1)

/* RFC 6962 interior node: SHA-256(0x01 || left || right). out may alias left or right. */
static inline void
hash_children(const unsigned char *left, const unsigned char *right, unsigned char *out)
{
    unsigned char buffer[1 + 2 * HASH_SIZE];
    SHA256_CTX ctx;
    buffer[0] = 0x01;
    memcpy(buffer + 1, left, HASH_SIZE);
    memcpy(buffer + 1 + HASH_SIZE, right, HASH_SIZE);
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, buffer, sizeof(buffer));
    SHA256_Final(out, &ctx);
}

/* Copy a list of exactly-32-byte bytes objects into a new buffer (NULL and an error set
 * otherwise), with room for all parent levels if `with_levels`. Called with the GIL held and
 * no Python code run in between: the list cannot change under us. */
static unsigned char *
copy_hashes(PyObject *list, Py_ssize_t *count, int with_levels)
{
    if (!PyList_CheckExact(list)) {
        PyErr_SetString(PyExc_TypeError, "expected a list of 32-byte hashes");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(list);
    if (n == 0 || n > PY_SSIZE_T_MAX / (4 * HASH_SIZE)) {
        PyErr_SetString(PyExc_ValueError, "expected between 1 and 2^56 hashes");
        return NULL;
    }
    /* Level widths are ceil(w / 2) up to 1: at most n + log2(n) + 1 nodes above the leaves. */
    Py_ssize_t nodes = n;
    for (Py_ssize_t width = n; with_levels && width > 1;) {
        width = width / 2 + (width & 1);
        nodes += width;
    }
    unsigned char *buffer = PyMem_RawMalloc((size_t)nodes * HASH_SIZE);
    if (buffer == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(list, i);
        if (!PyBytes_CheckExact(item) || PyBytes_GET_SIZE(item) != HASH_SIZE) {
            PyMem_RawFree(buffer);
            PyErr_Format(PyExc_ValueError, "item %zd is not 32 bytes", i);
            return NULL;
        }
        memcpy(buffer + i * HASH_SIZE, PyBytes_AS_STRING(item), HASH_SIZE);
    }
    *count = n;
    return buffer;
}

/* Hash `width` nodes at `level` into their parents at `parents`; an odd last node moves up
 * unchanged (RFC 6962's split rule). Returns the parents' count. */
static Py_ssize_t
parent_level(const unsigned char *level, Py_ssize_t width, unsigned char *parents)
{
    Py_ssize_t pairs = width / 2;
    for (Py_ssize_t i = 0; i < pairs; i++) {
        hash_children(level + 2 * i * HASH_SIZE, level + (2 * i + 1) * HASH_SIZE,
                      parents + i * HASH_SIZE);
    }
    if (width & 1) {
        memmove(parents + pairs * HASH_SIZE, level + (width - 1) * HASH_SIZE, HASH_SIZE);
    }
    return pairs + (width & 1);
}

PyDoc_STRVAR(merkle_root_doc,
"merkle_root(leaf_hashes: list[bytes]) -> bytes\n\n"
"RFC 6962 Merkle Tree Hash of a non-empty list of 32-byte leaf hashes.");

static PyObject *
merkle_root(PyObject *module, PyObject *leaves)
{
    Py_ssize_t width;
    unsigned char *buffer = copy_hashes(leaves, &width, 0);
    if (buffer == NULL) {
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    while (width > 1) {
        width = parent_level(buffer, width, buffer);  /* in place: parent i <= child 2i */
    }
    Py_END_ALLOW_THREADS
    PyObject *root = PyBytes_FromStringAndSize((const char *)buffer, HASH_SIZE);
    PyMem_RawFree(buffer);
    return root;
}

PyDoc_STRVAR(merkle_levels_doc,
"merkle_levels(leaf_hashes: list[bytes]) -> list[list[bytes]]\n\n"
"The levels above the leaves of the RFC 6962 tree over a non-empty list of 32-byte leaf\n"
"hashes, bottom-up, up to the root's level; an odd last node is carried up as the same\n"
"object.");

static PyObject *
merkle_levels(PyObject *module, PyObject *leaves)
{
    Py_ssize_t width;
    unsigned char *buffer = copy_hashes(leaves, &width, 1);
    if (buffer == NULL) {
        return NULL;
    }
    Py_ssize_t leaf_count = width;
    Py_BEGIN_ALLOW_THREADS
    unsigned char *level = buffer;
    while (width > 1) {
        unsigned char *parents = level + width * HASH_SIZE;
        width = parent_level(level, width, parents);
        level = parents;
    }
    Py_END_ALLOW_THREADS

    PyObject *levels = PyList_New(0);
    PyObject *below = leaves;  /* borrowed: the level under the one being built */
    const unsigned char *level_data = buffer;
    width = leaf_count;
    while (levels != NULL && width > 1) {
        Py_ssize_t parents = width / 2 + (width & 1);
        const unsigned char *parent_data = level_data + width * HASH_SIZE;
        PyObject *list = PyList_New(parents);
        if (list == NULL) {
            Py_CLEAR(levels);
            break;
        }
        for (Py_ssize_t i = 0; i < width / 2; i++) {
            PyObject *node = PyBytes_FromStringAndSize(
                (const char *)parent_data + i * HASH_SIZE, HASH_SIZE);
            if (node == NULL) {
                Py_CLEAR(list);
                break;
            }
            PyList_SET_ITEM(list, i, node);
        }
        if (list != NULL && (width & 1)) {
            /* The caller's list may have changed while the GIL was released: carry a copy
             * from the buffer out of it, the same object out of the levels built here. */
            PyObject *carried;
            if (below == leaves) {
                carried = PyBytes_FromStringAndSize(
                    (const char *)parent_data + (parents - 1) * HASH_SIZE, HASH_SIZE);
            }
            else {
                carried = PyList_GET_ITEM(below, width - 1);
                Py_INCREF(carried);
            }
            if (carried == NULL) {
                Py_CLEAR(list);
            }
            else {
                PyList_SET_ITEM(list, parents - 1, carried);
            }
        }
        if (list == NULL || PyList_Append(levels, list) < 0) {
            Py_XDECREF(list);
            Py_CLEAR(levels);
            break;
        }
        Py_DECREF(list);  /* levels holds it, so `below` stays valid */
        below = list;
        level_data = parent_data;
        width = parents;
    }
    PyMem_RawFree(buffer);
    return levels;
}

PyDoc_STRVAR(fold_proof_doc,
"fold_proof(seed: bytes, proof: list[bytes] | tuple[bytes, ...], index: int, inner: int,\n"
"           right_only: bool) -> bytes\n\n"
"RFC 9162 §2.1.3.2 chains: for proof[k], k < inner, bit k of index set means the node is the\n"
"left sibling, clear the right one (skipped if right_only); proof[k], k >= inner, are all\n"
"left siblings. index is an unsigned 64-bit integer.");

static PyObject *
fold_proof(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "fold_proof takes 5 arguments");
        return NULL;
    }
    PyObject *seed = args[0], *proof = args[1];
    if (!PyBytes_CheckExact(seed) || PyBytes_GET_SIZE(seed) != HASH_SIZE) {
        PyErr_SetString(PyExc_ValueError, "seed is not 32 bytes");
        return NULL;
    }
    if (!PyList_CheckExact(proof) && !PyTuple_CheckExact(proof)) {
        PyErr_SetString(PyExc_TypeError, "proof must be a list or a tuple");
        return NULL;
    }
    unsigned long long index = PyLong_AsUnsignedLongLong(args[2]);
    if (index == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t inner = PyLong_AsSsize_t(args[3]);
    if (inner == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int right_only = PyObject_IsTrue(args[4]);
    if (right_only < 0) {
        return NULL;
    }
    Py_ssize_t length = PySequence_Fast_GET_SIZE(proof);
    if (inner < 0 || inner > length) {
        PyErr_SetString(PyExc_ValueError, "inner is outside the proof");
        return NULL;
    }
    PyObject **nodes = PySequence_Fast_ITEMS(proof);
    for (Py_ssize_t k = 0; k < length; k++) {
        if (!PyBytes_CheckExact(nodes[k]) || PyBytes_GET_SIZE(nodes[k]) != HASH_SIZE) {
            PyErr_Format(PyExc_ValueError, "proof node %zd is not 32 bytes", k);
            return NULL;
        }
    }
    unsigned char hash[HASH_SIZE];
    memcpy(hash, PyBytes_AS_STRING(seed), HASH_SIZE);
    /* A proof has at most a few dozen nodes: not worth releasing the GIL. */
    for (Py_ssize_t k = 0; k < length; k++) {
        const unsigned char *node = (const unsigned char *)PyBytes_AS_STRING(nodes[k]);
        int left_sibling = k >= inner || (k < 64 && ((index >> k) & 1));
        if (left_sibling) {
            hash_children(node, hash, hash);
        }
        else if (!right_only) {
            hash_children(hash, node, hash);
        }
    }
    return PyBytes_FromStringAndSize((const char *)hash, HASH_SIZE);
}

/* --- commit_records ------------------------------------------------------------------- */

/* Set by configure(): the classes and slot descriptors of Record, Leaf and
 * CommittedVersion, and the constant objects every version 1 leaf shares. */
static struct {
    int ready;  /* every member below is set: configure() ran to the end */
    PyTypeObject *record_type;
    PyObject *record_slots[5];  /* region, uscc, record_type, record_id, _canonical */
    PyObject *canonical_method;  /* "canonical_bytes", for records built in code */
    PyTypeObject *leaf_type;
    PyObject *leaf_slots[5];  /* record_key, version, status, prev_leaf, commitment */
    PyTypeObject *version_type;
    PyObject *version_slots[3];  /* leaf, leaf_hash, salt */
    PyObject *active;  /* LeafStatus.ACTIVE */
    PyObject *one;  /* the int 1 */
    PyObject *zero_hash;  /* 32 zero bytes */
} config;

static int
check_slots(PyObject *tuple, PyObject **slots, Py_ssize_t count, const char *what)
{
    if (!PyTuple_CheckExact(tuple) || PyTuple_GET_SIZE(tuple) != count) {
        PyErr_Format(PyExc_TypeError, "%s: expected a tuple of %zd slot descriptors", what,
                     count);
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *descriptor = PyTuple_GET_ITEM(tuple, i);
        if (!Py_IS_TYPE(descriptor, &PyMemberDescr_Type)) {
            PyErr_Format(PyExc_TypeError, "%s: item %zd is not a slot descriptor", what, i);
            return -1;
        }
        Py_INCREF(descriptor);
        Py_XSETREF(slots[i], descriptor);
    }
    return 0;
}

static int
set_type(PyObject *value, PyTypeObject **target)
{
    if (!PyType_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "expected a class");
        return -1;
    }
    Py_INCREF(value);
    Py_XSETREF(*target, (PyTypeObject *)value);
    return 0;
}

PyDoc_STRVAR(configure_doc,
"configure(record_cls, record_slots, leaf_cls, leaf_slots, version_cls, version_slots,\n"
"          active, zero_hash) -> None\n\n"
"Tell commit_batch the classes it reads and builds and their slot descriptors (see\n"
"ledger.commitment).");

static PyObject *
configure(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "configure takes 8 arguments");
        return NULL;
    }
    config.ready = 0;  /* a call failing half-way must not leave commit_batch NULL members */
    if (set_type(args[0], &config.record_type) < 0
        || check_slots(args[1], config.record_slots, 5, "record_slots") < 0
        || set_type(args[2], &config.leaf_type) < 0
        || check_slots(args[3], config.leaf_slots, 5, "leaf_slots") < 0
        || set_type(args[4], &config.version_type) < 0
        || check_slots(args[5], config.version_slots, 3, "version_slots") < 0) {
        return NULL;
    }
    if (!PyBytes_CheckExact(args[7]) || PyBytes_GET_SIZE(args[7]) != HASH_SIZE) {
        PyErr_SetString(PyExc_ValueError, "zero_hash is not 32 bytes");
        return NULL;
    }
    Py_INCREF(args[6]);
    Py_XSETREF(config.active, args[6]);
    Py_INCREF(args[7]);
    Py_XSETREF(config.zero_hash, args[7]);
    if (config.one == NULL && (config.one = PyLong_FromLong(1)) == NULL) {
        return NULL;
    }
    if (config.canonical_method == NULL
        && (config.canonical_method = PyUnicode_InternFromString("canonical_bytes")) == NULL) {
        return NULL;
    }
    config.ready = 1;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(hmac_states_doc,
"hmac_states(key: bytes) -> bytes\n\n"
"The two SHA-256 states of HMAC-SHA256 (RFC 2104) after the inner and outer padded key\n"
"blocks, for commit_batch; key is the 64-byte block (the node secret, hashed if longer than\n"
"64 bytes, zero-padded).");

static PyObject *
hmac_states(PyObject *module, PyObject *key)
{
    if (!PyBytes_CheckExact(key) || PyBytes_GET_SIZE(key) != SHA256_CBLOCK) {
        PyErr_SetString(PyExc_ValueError, "key must be the 64-byte key block");
        return NULL;
    }
    SHA256_CTX states[2];
    unsigned char pad[SHA256_CBLOCK];
    const unsigned char *block = (const unsigned char *)PyBytes_AS_STRING(key);
    for (int i = 0; i < SHA256_CBLOCK; i++) {
        pad[i] = block[i] ^ 0x36;
    }
    SHA256_Init(&states[0]);
    SHA256_Update(&states[0], pad, sizeof(pad));
    for (int i = 0; i < SHA256_CBLOCK; i++) {
        pad[i] = block[i] ^ 0x5c;
    }
    SHA256_Init(&states[1]);
    SHA256_Update(&states[1], pad, sizeof(pad));
    PyObject *result = PyBytes_FromStringAndSize((const char *)states, sizeof(states));
    OPENSSL_cleanse(pad, sizeof(pad));
    OPENSSL_cleanse(states, sizeof(states));
    return result;
}

/* What one record contributes: pointers into objects kept alive by `owned`. */
typedef struct {
    uint32_t region;
    unsigned char type_code;
    const char *uscc, *record_id, *canonical;
    Py_ssize_t uscc_len, record_id_len, canonical_len;
    unsigned char key[HASH_SIZE], salt[HASH_SIZE], commitment[HASH_SIZE],
        leaf_hash[HASH_SIZE];
} Item;

static PyObject *
get_slot(PyObject *descriptor, PyObject *instance)
{
    return Py_TYPE(descriptor)->tp_descr_get(descriptor, instance,
                                             (PyObject *)Py_TYPE(instance));
}

/* Read one record's inputs; on success owned[0..2] hold new references. */
static int
read_record(PyObject *record, Item *item, PyObject **owned)
{
    PyObject *region = NULL, *type_code = NULL;
    owned[0] = owned[1] = owned[2] = NULL;
    if (!Py_IS_TYPE(record, config.record_type)) {
        PyErr_SetString(PyExc_TypeError, "expected a Record");
        return -1;
    }
    region = get_slot(config.record_slots[0], record);
    if (region == NULL) {
        goto error;
    }
    unsigned long region_value = PyLong_Check(region) ? PyLong_AsUnsignedLong(region) : 0;
    if (region_value == (unsigned long)-1 && PyErr_Occurred()) {
        goto error;
    }
    if (!PyLong_Check(region) || region_value > UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "record region is not a u32");
        goto error;
    }
    item->region = (uint32_t)region_value;
    type_code = get_slot(config.record_slots[2], record);
    if (type_code == NULL) {
        goto error;
    }
    long code = PyLong_Check(type_code) ? PyLong_AsLong(type_code) : -1;
    if (code == -1 && PyErr_Occurred()) {
        goto error;
    }
    if (code < 0 || code > 255) {
        PyErr_SetString(PyExc_ValueError, "record type code is not a u8");
        goto error;
    }
    item->type_code = (unsigned char)code;
    if ((owned[0] = get_slot(config.record_slots[1], record)) == NULL
        || (owned[1] = get_slot(config.record_slots[3], record)) == NULL) {
        goto error;
    }
    if (!PyUnicode_Check(owned[0]) || !PyUnicode_Check(owned[1])) {
        PyErr_SetString(PyExc_TypeError, "record uscc and record_id must be str");
        goto error;
    }
    /* UTF-8 is cached on the str (for ASCII it is the str's own buffer). */
    item->uscc = PyUnicode_AsUTF8AndSize(owned[0], &item->uscc_len);
    item->record_id = PyUnicode_AsUTF8AndSize(owned[1], &item->record_id_len);
    if (item->uscc == NULL || item->record_id == NULL) {
        goto error;
    }
    owned[2] = get_slot(config.record_slots[4], record);
    if (owned[2] == NULL) {  /* a record built in code: canonical bytes not written yet */
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            goto error;
        }
        PyErr_Clear();
        owned[2] = PyObject_CallMethodNoArgs(record, config.canonical_method);
        if (owned[2] == NULL) {
            goto error;
        }
    }
    if (!PyBytes_CheckExact(owned[2])) {
        PyErr_SetString(PyExc_TypeError, "canonical bytes must be bytes");
        goto error;
    }
    item->canonical = PyBytes_AS_STRING(owned[2]);
    item->canonical_len = PyBytes_GET_SIZE(owned[2]);
    Py_DECREF(region);
    Py_DECREF(type_code);
    return 0;
error:
    Py_XDECREF(region);
    Py_XDECREF(type_code);
    Py_CLEAR(owned[0]);
    Py_CLEAR(owned[1]);
    Py_CLEAR(owned[2]);
    return -1;
}

/* record_key of DESIGN §3. */
static void
item_record_key(const Item *item, unsigned char *out)
{
    unsigned char region[4] = {
        (unsigned char)(item->region >> 24), (unsigned char)(item->region >> 16),
        (unsigned char)(item->region >> 8), (unsigned char)item->region};
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, KEY_DOMAIN, KEY_DOMAIN_LEN);
    SHA256_Update(&ctx, region, 4);
    SHA256_Update(&ctx, item->uscc, (size_t)item->uscc_len);
    SHA256_Update(&ctx, &item->type_code, 1);
    SHA256_Update(&ctx, item->record_id, (size_t)item->record_id_len);
    SHA256_Final(out, &ctx);
}

/* DESIGN §3 for version 1 (active, no predecessor): record key, salt, commitment, leaf. */
static void
hash_item(Item *item, const SHA256_CTX *hmac)
{
    static const unsigned char first_version[4] = {0, 0, 0, 1};
    static const unsigned char zero[HASH_SIZE] = {0};
    SHA256_CTX ctx;
    unsigned char inner[HASH_SIZE];

    item_record_key(item, item->key);

    ctx = hmac[0];
    SHA256_Update(&ctx, item->key, HASH_SIZE);
    SHA256_Update(&ctx, first_version, 4);
    SHA256_Final(inner, &ctx);
    ctx = hmac[1];
    SHA256_Update(&ctx, inner, HASH_SIZE);
    SHA256_Final(item->salt, &ctx);

    SHA256_Init(&ctx);
    SHA256_Update(&ctx, COMMIT_DOMAIN, COMMIT_DOMAIN_LEN);
    SHA256_Update(&ctx, item->salt, HASH_SIZE);
    SHA256_Update(&ctx, item->canonical, (size_t)item->canonical_len);
    SHA256_Final(item->commitment, &ctx);

    static const unsigned char status_active = 1;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, LEAF_PREFIX, LEAF_PREFIX_LEN);
    SHA256_Update(&ctx, item->key, HASH_SIZE);
    SHA256_Update(&ctx, first_version, 4);
    SHA256_Update(&ctx, &status_active, 1);
    SHA256_Update(&ctx, zero, HASH_SIZE);
    SHA256_Update(&ctx, item->commitment, HASH_SIZE);
    SHA256_Final(item->leaf_hash, &ctx);
}

/* A new instance of a frozen slots dataclass, filled through its slot descriptors (which
 * bypass the frozen __setattr__); steals nothing. */
static PyObject *
new_instance(PyTypeObject *type, PyObject **slots, PyObject **values, int count)
{
    PyObject *instance = type->tp_alloc(type, 0);
    if (instance == NULL) {
        return NULL;
    }
    for (int i = 0; i < count; i++) {
        if (Py_TYPE(slots[i])->tp_descr_set(slots[i], instance, values[i]) < 0) {
            Py_DECREF(instance);
            return NULL;
        }
    }
    return instance;
}

static PyObject *
build_version(const Item *item)
{
    PyObject *key = NULL, *salt = NULL, *commitment = NULL, *leaf_hash = NULL;
    PyObject *leaf = NULL, *version = NULL;
    key = PyBytes_FromStringAndSize((const char *)item->key, HASH_SIZE);
    salt = PyBytes_FromStringAndSize((const char *)item->salt, HASH_SIZE);
    commitment = PyBytes_FromStringAndSize((const char *)item->commitment, HASH_SIZE);
    leaf_hash = PyBytes_FromStringAndSize((const char *)item->leaf_hash, HASH_SIZE);
    if (key != NULL && salt != NULL && commitment != NULL && leaf_hash != NULL) {
        PyObject *leaf_values[5] = {key, config.one, config.active, config.zero_hash,
                                    commitment};
        leaf = new_instance(config.leaf_type, config.leaf_slots, leaf_values, 5);
        if (leaf != NULL) {
            PyObject *version_values[3] = {leaf, leaf_hash, salt};
            version = new_instance(config.version_type, config.version_slots,
                                   version_values, 3);
        }
    }
    Py_XDECREF(key);
    Py_XDECREF(salt);
    Py_XDECREF(commitment);
    Py_XDECREF(leaf_hash);
    Py_XDECREF(leaf);
    return version;
}

PyDoc_STRVAR(commit_batch_doc,
"commit_batch(records: list[Record], hmac_states: bytes) -> list[CommittedVersion]\n\n"
"commit_records of ledger.commitment for a list of Records: version 1 of each, active,\n"
"with the salt HMAC-SHA256(node secret, record_key || u32be(1)).");

static PyObject *
commit_batch(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "commit_batch takes 2 arguments");
        return NULL;
    }
    if (!config.ready) {
        PyErr_SetString(PyExc_RuntimeError, "configure() has not succeeded");
        return NULL;
    }
    PyObject *records = args[0], *states = args[1];
    if (!PyList_CheckExact(records)) {
        PyErr_SetString(PyExc_TypeError, "records must be a list");
        return NULL;
    }
    if (!PyBytes_CheckExact(states) || PyBytes_GET_SIZE(states) != 2 * sizeof(SHA256_CTX)) {
        PyErr_SetString(PyExc_ValueError, "hmac_states must come from hmac_states()");
        return NULL;
    }
    SHA256_CTX hmac[2];
    memcpy(hmac, PyBytes_AS_STRING(states), sizeof(hmac));
    /* The states are raw OpenSSL structs in a bytes object anyone can forge: num indexes
     * the context's 64-byte block and md_len sizes the digest, so a forged state would make
     * SHA256_Update/Final write out of bounds. hmac_states() leaves exactly one block
     * hashed and nothing pending. */
    for (int i = 0; i < 2; i++) {
        if (hmac[i].num != 0 || hmac[i].md_len != SHA256_DIGEST_LENGTH
            || hmac[i].Nl != 8 * SHA256_CBLOCK || hmac[i].Nh != 0) {
            OPENSSL_cleanse(hmac, sizeof(hmac));
            PyErr_SetString(PyExc_ValueError, "hmac_states must come from hmac_states()");
            return NULL;
        }
    }

    /* A tuple copy holds every record while the GIL is released below, whatever other
     * threads do to the list; owned holds the str and bytes the items point into. */
    PyObject *held = PySequence_Tuple(records);
    if (held == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(held);
    PyObject *result = NULL;
    Item *items = NULL;
    PyObject **owned = NULL;
    Py_ssize_t read = 0;
    if ((size_t)n > PY_SSIZE_T_MAX / (3 * sizeof(PyObject *) + sizeof(Item))) {
        PyErr_NoMemory();
        goto done;
    }
    items = PyMem_Malloc(sizeof(Item) * (size_t)(n ? n : 1));
    owned = PyMem_Calloc((size_t)(n ? 3 * n : 1), sizeof(PyObject *));
    if (items == NULL || owned == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (; read < n; read++) {
        if (read_record(PyTuple_GET_ITEM(held, read), &items[read], owned + 3 * read) < 0) {
            goto done;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        hash_item(&items[i], hmac);
    }
    Py_END_ALLOW_THREADS
    result = PyList_New(n);
    for (Py_ssize_t i = 0; result != NULL && i < n; i++) {
        PyObject *version = build_version(&items[i]);
        if (version == NULL) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, i, version);
    }
done:
    OPENSSL_cleanse(hmac, sizeof(hmac));
    if (owned != NULL) {
        for (Py_ssize_t i = 0; i < 3 * read; i++) {
            Py_XDECREF(owned[i]);
        }
    }
    PyMem_Free(owned);
    PyMem_Free(items);
    Py_DECREF(held);
    return result;
}

/* --- parse_record ------------------------------------------------------------------------ */

/* The fast path of ledger.records.parse_record in C: it accepts exactly what the generated
 * Python fast path accepts, builds the same objects and the same RFC 8785 bytes, and returns
 * None at the first doubt, so that the Python paths decide (and name the field of any
 * rejection). The rules are those of ledger/records.py; configure_records() hands over the
 * schemas, so no field name or bound is repeated here. */

enum { KIND_LINE, KIND_TEXT, KIND_INT, KIND_DATE, KIND_CHOICE, KIND_CHOICES };

typedef struct {
    PyObject *name;  /* the member name (an interned str) */
    PyObject *slot;  /* its slot descriptor on the payload class */
    PyObject *by_value;  /* choices: value -> enum member */
    const char *utf8;  /* the name, for the canonical text */
    Py_ssize_t utf8_len;
    int kind, required;
    long long minimum, maximum;  /* integers; texts: maximum length */
} Field;

typedef struct {
    PyTypeObject *cls;
    PyObject *check_consistency;  /* unbound method, or NULL when the class adds no rule */
    Py_ssize_t count, required;
    Field *fields;  /* in field order */
    Py_ssize_t *order;  /* field indices in RFC 8785 (code point) order of the names */
} Schema;

#define RECORD_TYPES 9
static struct {
    int ready;
    PyTypeObject *record_type;
    PyObject *record_slots[8];  /* region, uscc, record_type, record_id, issued_by,
                                   issued_at, data, _canonical */
    PyObject *schema;  /* "credit-ledger/record/v1" */
    PyObject *type_by_name;  /* dict: name -> RecordType */
    PyObject *dates;  /* dict: known valid date strings -> date */
    PyObject *new_date;  /* str -> date | None, remembering valid ones */
    PyObject *record_error;
    PyObject *keys[8];  /* the envelope's member names */
    char provinces[100];  /* two-digit province prefixes */
    signed char uscc_values[128];  /* USCC character -> value, -1 if not allowed */
    char uscc_chars[31];
    Py_ssize_t record_id_max, issued_by_max;
    Schema schemas[RECORD_TYPES + 1];  /* by type code */
} parser;

static const int USCC_WEIGHTS[17] = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30,
                                     28};

/* A growing output buffer for the canonical bytes. */
typedef struct {
    char *data;
    Py_ssize_t length, capacity;
} Out;

static int
out_reserve(Out *out, Py_ssize_t more)
{
    if (out->length + more <= out->capacity) {
        return 0;
    }
    if (more > PY_SSIZE_T_MAX / 4 - out->length) {
        return -1;
    }
    Py_ssize_t capacity = 2 * (out->length + more);
    char *data = PyMem_Realloc(out->data, (size_t)capacity);
    if (data == NULL) {
        return -1;
    }
    out->data = data;
    out->capacity = capacity;
    return 0;
}

static int
out_write(Out *out, const char *bytes, Py_ssize_t length)
{
    if (out_reserve(out, length) < 0) {
        return -1;
    }
    memcpy(out->data + out->length, bytes, (size_t)length);
    out->length += length;
    return 0;
}

#define OUT_LITERAL(out, text) out_write((out), (text), (Py_ssize_t)sizeof(text) - 1)

/* A JSON string literal as json.encoder.encode_basestring writes it, which is RFC 8785's
 * form for valid Unicode: quote, backslash and controls escaped, the rest as UTF-8. Lone
 * surrogates never get here (the text checks refuse them). */
static int
out_json_string(Out *out, PyObject *text)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    if (length > (PY_SSIZE_T_MAX - 2) / 6 || out_reserve(out, 2 + 6 * length) < 0) {
        return -1;  /* 6 bytes per character is the worst case (\u00XX) */
    }
    char *p = out->data + out->length;
    *p++ = '"';
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c >= 0x20 && c != '"' && c != '\\') {
            if (c < 0x80) {
                *p++ = (char)c;
            }
            else if (c < 0x800) {
                *p++ = (char)(0xc0 | (c >> 6));
                *p++ = (char)(0x80 | (c & 0x3f));
            }
            else if (c < 0x10000) {
                *p++ = (char)(0xe0 | (c >> 12));
                *p++ = (char)(0x80 | ((c >> 6) & 0x3f));
                *p++ = (char)(0x80 | (c & 0x3f));
            }
            else {
                *p++ = (char)(0xf0 | (c >> 18));
                *p++ = (char)(0x80 | ((c >> 12) & 0x3f));
                *p++ = (char)(0x80 | ((c >> 6) & 0x3f));
                *p++ = (char)(0x80 | (c & 0x3f));
            }
            continue;
        }
        *p++ = '\\';
        switch (c) {
        case '"': *p++ = '"'; break;
        case '\\': *p++ = '\\'; break;
        case '\b': *p++ = 'b'; break;
        case '\f': *p++ = 'f'; break;
        case '\n': *p++ = 'n'; break;
        case '\r': *p++ = 'r'; break;
        case '\t': *p++ = 't'; break;
        default:
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = "0123456789abcdef"[c >> 4];
            *p++ = "0123456789abcdef"[c & 0xf];
        }
    }
    *p++ = '"';
    out->length = p - out->data;
    return 0;
}

/* An ASCII str written between quotes as is (dates, enum values, the USCC, type names:
 * values checked to need no escape). */
static int
out_quoted_ascii(Out *out, PyObject *text)
{
    if (!PyUnicode_IS_ASCII(text)) {
        return -1;
    }
    if (out_reserve(out, PyUnicode_GET_LENGTH(text) + 2) < 0) {
        return -1;
    }
    out->data[out->length++] = '"';
    memcpy(out->data + out->length, PyUnicode_DATA(text), (size_t)PyUnicode_GET_LENGTH(text));
    out->length += PyUnicode_GET_LENGTH(text);
    out->data[out->length++] = '"';
    return 0;
}

static int
out_integer(Out *out, long long value)
{
    char digits[24];
    char *p = digits + sizeof(digits);
    /* through unsigned: the magnitude of LLONG_MIN does not fit a long long */
    unsigned long long magnitude = value < 0 ? 0ULL - (unsigned long long)value
                                             : (unsigned long long)value;
    do {
        *--p = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    if (value < 0) {
        *--p = '-';
    }
    return out_write(out, p, digits + sizeof(digits) - p);
}

/* _Text.check: a str of 1..maximum characters, no leading or trailing whitespace (as
 * str.strip() sees it), no lone surrogate and no control character (Unicode Cc) except tab,
 * line feed and carriage return in free text. */
static int
text_ok(PyObject *value, Py_ssize_t maximum, int multiline)
{
    if (!PyUnicode_CheckExact(value)) {
        return 0;
    }
    Py_ssize_t length = PyUnicode_GET_LENGTH(value);
    if (length < 1 || length > maximum) {
        return 0;
    }
    int kind = PyUnicode_KIND(value);
    const void *data = PyUnicode_DATA(value);
    if (Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, 0))
        || Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, length - 1))) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < 0x20) {
            if (!(multiline && (c == '\t' || c == '\n' || c == '\r'))) {
                return 0;
            }
        }
        else if ((c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xdfff)) {
            return 0;
        }
    }
    return 1;
}

/* is_valid_uscc of ledger.uscc: 18 characters of the GB 32100-2015 set, characters 3-8 a
 * province's division code or the national 100000, character 18 the check character. */
static int
uscc_ok(PyObject *value)
{
    if (!PyUnicode_CheckExact(value) || !PyUnicode_IS_ASCII(value)
        || PyUnicode_GET_LENGTH(value) != 18) {
        return 0;
    }
    const unsigned char *code = PyUnicode_DATA(value);
    int total = 0;
    for (int i = 0; i < 18; i++) {
        if (code[i] >= 128 || parser.uscc_values[code[i]] < 0) {
            return 0;
        }
        if (i < 17) {
            total += parser.uscc_values[code[i]] * USCC_WEIGHTS[i];
        }
    }
    for (int i = 2; i < 8; i++) {
        if (code[i] < '0' || code[i] > '9') {
            return 0;
        }
    }
    int province = (code[2] - '0') * 10 + (code[3] - '0');
    if (!parser.provinces[province] && memcmp(code + 2, "100000", 6) != 0) {
        return 0;
    }
    return code[17] == (unsigned char)parser.uscc_chars[(31 - total % 31) % 31];
}

/* The date of a valid YYYY-MM-DD string in range, as a new reference; NULL with no error
 * set when the string is not one; NULL with an error set on failure. */
static PyObject *
date_of(PyObject *value)
{
    if (!PyUnicode_CheckExact(value)) {
        return NULL;
    }
    PyObject *date = PyDict_GetItemWithError(parser.dates, value);
    if (date != NULL) {
        Py_INCREF(date);
        return date;
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    date = PyObject_CallOneArg(parser.new_date, value);
    if (date == Py_None) {
        Py_DECREF(date);
        return NULL;
    }
    return date;
}

/* An exact int (not bool) in [minimum, maximum]. */
static int
integer_in(PyObject *value, long long minimum, long long maximum, long long *result)
{
    if (!PyLong_CheckExact(value)) {
        return 0;
    }
    int overflow;
    long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow || (number == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    *result = number;
    return minimum <= number && number <= maximum;
}

/* Check one payload member; *typed gets a new reference to the typed value. 1 accepted,
 * 0 not (no error set), -1 error. */
static int
check_member(const Field *field, PyObject *value, PyObject **typed)
{
    long long number;
    switch (field->kind) {
    case KIND_LINE:
    case KIND_TEXT:
        if (!text_ok(value, (Py_ssize_t)field->maximum, field->kind == KIND_TEXT)) {
            return 0;
        }
        Py_INCREF(value);
        *typed = value;
        return 1;
    case KIND_INT:
        if (!integer_in(value, field->minimum, field->maximum, &number)) {
            return 0;
        }
        Py_INCREF(value);
        *typed = value;
        return 1;
    case KIND_DATE:
        *typed = date_of(value);
        return *typed != NULL ? 1 : (PyErr_Occurred() ? -1 : 0);
    case KIND_CHOICE: {
        if (!PyUnicode_CheckExact(value)) {
            return 0;
        }
        PyObject *member = PyDict_GetItemWithError(field->by_value, value);
        if (member == NULL) {
            return PyErr_Occurred() ? -1 : 0;
        }
        Py_INCREF(member);
        *typed = member;
        return 1;
    }
    case KIND_CHOICES: {
        /* A non-empty list of distinct values: never longer than the enum. */
        if (!PyList_CheckExact(value)) {
            return 0;
        }
        Py_ssize_t count = PyList_GET_SIZE(value);
        if (count < 1 || count > field->maximum) {
            return 0;
        }
        PyObject *members = PyTuple_New(count);
        if (members == NULL) {
            return -1;
        }
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *item = PyList_GET_ITEM(value, i);
            PyObject *member = NULL;
            if (PyUnicode_CheckExact(item)) {
                member = PyDict_GetItemWithError(field->by_value, item);
            }
            if (member == NULL || PyList_GET_SIZE(value) != count) {
                Py_DECREF(members);
                return PyErr_Occurred() ? -1 : 0;
            }
            for (Py_ssize_t j = 0; j < i; j++) {
                if (PyTuple_GET_ITEM(members, j) == member) {
                    Py_DECREF(members);
                    return 0;
                }
            }
            Py_INCREF(member);
            PyTuple_SET_ITEM(members, i, member);
        }
        *typed = members;
        return 1;
    }
    }
    return 0;
}

/* Write one member's value: the JSON form, which for every kind is the canonical form. */
static int
out_member_value(Out *out, const Field *field, PyObject *json, PyObject *typed)
{
    switch (field->kind) {
    case KIND_LINE:
    case KIND_TEXT:
        return out_json_string(out, json);
    case KIND_INT: {
        long long number = 0;
        integer_in(json, field->minimum, field->maximum, &number);
        return out_integer(out, number);
    }
    case KIND_DATE:
    case KIND_CHOICE:
        return out_quoted_ascii(out, json);
    case KIND_CHOICES: {
        if (OUT_LITERAL(out, "[") < 0) {
            return -1;
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(typed); i++) {
            /* the member's value is the str it was looked up by */
            if ((i && OUT_LITERAL(out, ",") < 0)
                || out_quoted_ascii(out, PyTuple_GET_ITEM(typed, i)) < 0) {
                return -1;
            }
        }
        return OUT_LITERAL(out, "]");
    }
    }
    return -1;
}

#define MAX_FIELDS 16

PyDoc_STRVAR(parse_record_doc,
"parse_record(obj: object) -> Record | None\n\n"
"ledger.records.parse_record_fast in C: the Record if the fast path accepts obj, else None.");

static PyObject *
parse_record(PyObject *module, PyObject *obj)
{
    if (!parser.ready) {
        PyErr_SetString(PyExc_RuntimeError, "configure_records() has not been called");
        return NULL;
    }
    if (!PyDict_CheckExact(obj) || PyDict_GET_SIZE(obj) != 8) {
        Py_RETURN_NONE;
    }
    /* Strong references throughout: a lookup may run a hostile key's __eq__, which could
     * change the dict under borrowed ones. */
    PyObject *envelope[8] = {NULL};
    PyObject *json[MAX_FIELDS] = {NULL}, *typed[MAX_FIELDS] = {NULL};
    PyObject *record_type = NULL, *issued_on = NULL, *payload = NULL, *result = NULL;
    const Schema *schema = NULL;
    Out out = {NULL, 0, 0};
    int status;

    for (int i = 0; i < 8; i++) {
        envelope[i] = PyDict_GetItemWithError(obj, parser.keys[i]);
        if (envelope[i] == NULL) {
            for (int j = 0; j < i; j++) {
                Py_DECREF(envelope[j]);
            }
            if (PyErr_Occurred()) {
                return NULL;
            }
            Py_RETURN_NONE;
        }
        Py_INCREF(envelope[i]);
    }
    /* schema, region, uscc, record_type, record_id, issued_by, issued_at, data */
    PyObject *schema_name = envelope[0], *region = envelope[1], *uscc = envelope[2];
    PyObject *type_name = envelope[3], *record_id = envelope[4], *issued_by = envelope[5];
    PyObject *issued_at = envelope[6], *data = envelope[7];
    long long region_code;
    if (!PyUnicode_CheckExact(schema_name)
        || PyUnicode_Compare(schema_name, parser.schema) != 0
        || !integer_in(region, 100000, 999999, &region_code)
        || !parser.provinces[region_code / 10000]
        || !uscc_ok(uscc)
        || !PyUnicode_CheckExact(type_name)
        || !text_ok(record_id, parser.record_id_max, 0)
        || !text_ok(issued_by, parser.issued_by_max, 0)
        || !PyUnicode_CheckExact(issued_at)
        || !PyDict_CheckExact(data)) {
        goto reject;
    }
    record_type = PyDict_GetItemWithError(parser.type_by_name, type_name);
    if (record_type == NULL) {
        goto fail_or_reject;
    }
    Py_INCREF(record_type);
    long code = PyLong_AsLong(record_type);
    if (code < 1 || code > RECORD_TYPES) {
        goto fail_or_reject;
    }
    schema = &parser.schemas[code];
    if ((issued_on = date_of(issued_at)) == NULL) {
        goto fail_or_reject;
    }

    /* The payload: every required member, the optional ones present, nothing else. */
    Py_ssize_t present = 0;
    for (Py_ssize_t i = 0; i < schema->count; i++) {
        const Field *field = &schema->fields[i];
        json[i] = PyDict_GetItemWithError(data, field->name);
        if (json[i] == NULL) {
            if (PyErr_Occurred()) {
                goto fail;
            }
            if (field->required) {
                goto reject;
            }
            continue;
        }
        Py_INCREF(json[i]);
        present++;
        if ((status = check_member(field, json[i], &typed[i])) <= 0) {
            goto fail_or_reject;
        }
    }
    if (present != PyDict_GET_SIZE(data)) {
        goto reject;
    }
    payload = schema->cls->tp_alloc(schema->cls, 0);
    if (payload == NULL) {
        goto fail;
    }
    for (Py_ssize_t i = 0; i < schema->count; i++) {
        PyObject *slot = schema->fields[i].slot;
        PyObject *value = typed[i] != NULL ? typed[i] : Py_None;
        if (Py_TYPE(slot)->tp_descr_set(slot, payload, value) < 0) {
            goto fail;
        }
    }
    if (schema->check_consistency != NULL) {
        PyObject *checked = PyObject_CallOneArg(schema->check_consistency, payload);
        if (checked == NULL) {
            if (PyErr_ExceptionMatches(parser.record_error)) {
                PyErr_Clear();
                goto reject;
            }
            goto fail;
        }
        Py_DECREF(checked);
    }

    /* canonical(record): members in RFC 8785 order, the envelope's written out here. */
    if (OUT_LITERAL(&out, "{\"data\":{") < 0) {
        goto memory;
    }
    int first = 1;
    for (Py_ssize_t k = 0; k < schema->count; k++) {
        Py_ssize_t i = schema->order[k];
        const Field *field = &schema->fields[i];
        if (json[i] == NULL) {
            continue;
        }
        if ((!first && OUT_LITERAL(&out, ",") < 0) || OUT_LITERAL(&out, "\"") < 0
            || out_write(&out, field->utf8, field->utf8_len) < 0
            || OUT_LITERAL(&out, "\":") < 0
            || out_member_value(&out, field, json[i], typed[i]) < 0) {
            goto memory;
        }
        first = 0;
    }
    if (OUT_LITERAL(&out, "},\"issued_at\":") < 0 || out_quoted_ascii(&out, issued_at) < 0
        || OUT_LITERAL(&out, ",\"issued_by\":") < 0 || out_json_string(&out, issued_by) < 0
        || OUT_LITERAL(&out, ",\"record_id\":") < 0 || out_json_string(&out, record_id) < 0
        || OUT_LITERAL(&out, ",\"record_type\":") < 0
        || out_quoted_ascii(&out, type_name) < 0 || OUT_LITERAL(&out, ",\"region\":") < 0
        || out_integer(&out, region_code) < 0
        || OUT_LITERAL(&out, ",\"schema\":") < 0 || out_quoted_ascii(&out, parser.schema) < 0
        || OUT_LITERAL(&out, ",\"uscc\":") < 0
        || out_quoted_ascii(&out, uscc) < 0 || OUT_LITERAL(&out, "}") < 0) {
        goto memory;
    }
    PyObject *canonical = PyBytes_FromStringAndSize(out.data, out.length);
    if (canonical == NULL) {
        goto fail;
    }
    result = parser.record_type->tp_alloc(parser.record_type, 0);
    if (result == NULL) {
        Py_DECREF(canonical);
        goto fail;
    }
    PyObject *values[8] = {region, uscc, record_type, record_id, issued_by, issued_on, payload,
                           canonical};
    for (int i = 0; i < 8; i++) {
        if (Py_TYPE(parser.record_slots[i])->tp_descr_set(parser.record_slots[i], result,
                                                           values[i]) < 0) {
            Py_CLEAR(result);
            break;
        }
    }
    Py_DECREF(canonical);
    goto done;

memory:
    if (!PyErr_Occurred()) {
        PyErr_NoMemory();
    }
    goto fail;
fail_or_reject:
    if (PyErr_Occurred()) {
        goto fail;
    }
reject:
    result = Py_None;
    Py_INCREF(result);
    goto done;
fail:
    result = NULL;
done:
    for (int i = 0; i < 8; i++) {
        Py_XDECREF(envelope[i]);
    }
    for (Py_ssize_t i = 0; i < MAX_FIELDS; i++) {
        Py_XDECREF(json[i]);
        Py_XDECREF(typed[i]);
    }
    Py_XDECREF(record_type);
    Py_XDECREF(issued_on);
    Py_XDECREF(payload);
    PyMem_Free(out.data);
    return result;
}

static int
configure_schema(Schema *schema, PyObject *spec)
{
    /* (payload class, _check_consistency or None, fields, order); a field is (name, kind,
     * minimum, maximum, by_value or None, slot descriptor, required). */
    PyObject *cls, *check, *fields, *order;
    if (!PyTuple_CheckExact(spec)
        || !PyArg_ParseTuple(spec, "O!OO!O!", &PyType_Type, &cls, &check, &PyTuple_Type,
                             &fields, &PyTuple_Type, &order)) {
        PyErr_SetString(PyExc_TypeError, "bad schema");
        return -1;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(fields);
    if (count < 1 || count > MAX_FIELDS || PyTuple_GET_SIZE(order) != count) {
        PyErr_SetString(PyExc_ValueError, "bad field count");
        return -1;
    }
    if (schema->fields != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure_records() runs once");
        return -1;
    }
    schema->fields = PyMem_Calloc((size_t)count, sizeof(Field));
    schema->order = PyMem_Calloc((size_t)count, sizeof(Py_ssize_t));
    if (schema->fields == NULL || schema->order == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_INCREF(cls);
    schema->cls = (PyTypeObject *)cls;
    if (check != Py_None) {
        Py_INCREF(check);
        schema->check_consistency = check;
    }
    schema->count = count;
    for (Py_ssize_t i = 0; i < count; i++) {
        Field *field = &schema->fields[i];
        PyObject *name, *by_value, *slot;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(fields, i), "UiLLOOp", &name, &field->kind,
                              &field->minimum, &field->maximum, &by_value, &slot,
                              &field->required)) {
            return -1;
        }
        if (field->kind < KIND_LINE || field->kind > KIND_CHOICES
            || !Py_IS_TYPE(slot, &PyMemberDescr_Type)
            || ((field->kind == KIND_CHOICE || field->kind == KIND_CHOICES)
                != PyDict_CheckExact(by_value))) {
            PyErr_Format(PyExc_ValueError, "bad field %zd", i);
            return -1;
        }
        field->utf8 = PyUnicode_AsUTF8AndSize(name, &field->utf8_len);
        if (field->utf8 == NULL) {
            return -1;
        }
        Py_INCREF(name);
        field->name = name;
        Py_INCREF(slot);
        field->slot = slot;
        if (by_value != Py_None) {
            Py_INCREF(by_value);
            field->by_value = by_value;
        }
        schema->required += field->required;
        Py_ssize_t index = PyLong_AsSsize_t(PyTuple_GET_ITEM(order, i));
        if (index < 0 || index >= count) {
            PyErr_SetString(PyExc_ValueError, "bad order");
            return -1;
        }
        schema->order[i] = index;
    }
    return 0;
}

PyDoc_STRVAR(configure_records_doc,
"configure_records(record_cls, record_slots, record_schema, envelope_keys, type_by_name,\n"
"                  dates, new_date, record_error, provinces, uscc_charset, record_id_max,\n"
"                  issued_by_max, schemas) -> None\n\n"
"Hand parse_record the rules of ledger.records (see _configure_native there).");

static PyObject *
configure_records(PyObject *module, PyObject *args)
{
    PyObject *record_cls, *slots, *schema, *keys, *type_by_name, *dates, *new_date;
    PyObject *record_error, *provinces, *charset, *schemas;
    if (parser.ready) {
        PyErr_SetString(PyExc_RuntimeError, "configure_records() runs once");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!O!UO!O!O!OOO!UnnO!", &PyType_Type, &record_cls,
                          &PyTuple_Type, &slots, &schema, &PyTuple_Type, &keys, &PyDict_Type,
                          &type_by_name, &PyDict_Type, &dates, &new_date, &record_error,
                          &PyTuple_Type, &provinces, &charset, &parser.record_id_max,
                          &parser.issued_by_max, &PyDict_Type, &schemas)) {
        return NULL;
    }
    if (check_slots(slots, parser.record_slots, 8, "record_slots") < 0) {
        return NULL;
    }
    if (PyTuple_GET_SIZE(keys) != 8 || !PyUnicode_IS_ASCII(charset)
        || PyUnicode_GET_LENGTH(charset) != 31 || !PyUnicode_IS_ASCII(schema)
        || !PyExceptionClass_Check(record_error)) {
        PyErr_SetString(PyExc_ValueError, "bad envelope configuration");
        return NULL;
    }
    for (int i = 0; i < 8; i++) {
        PyObject *key = PyTuple_GET_ITEM(keys, i);
        if (!PyUnicode_CheckExact(key)) {
            PyErr_SetString(PyExc_TypeError, "envelope keys must be str");
            return NULL;
        }
        Py_INCREF(key);
        parser.keys[i] = key;
    }
    memset(parser.provinces, 0, sizeof(parser.provinces));
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(provinces); i++) {
        long prefix = PyLong_AsLong(PyTuple_GET_ITEM(provinces, i));
        if (prefix < 10 || prefix > 99) {
            PyErr_SetString(PyExc_ValueError, "province prefixes are 10-99");
            return NULL;
        }
        parser.provinces[prefix] = 1;
    }
    memset(parser.uscc_values, -1, sizeof(parser.uscc_values));
    const char *chars = PyUnicode_DATA(charset);
    for (int i = 0; i < 31; i++) {
        parser.uscc_values[(unsigned char)chars[i]] = (signed char)i;
        parser.uscc_chars[i] = chars[i];
    }
    PyObject *code, *spec;
    Py_ssize_t position = 0;
    int configured = 0;
    while (PyDict_Next(schemas, &position, &code, &spec)) {
        long type_code = PyLong_AsLong(code);
        if (type_code < 1 || type_code > RECORD_TYPES) {
            PyErr_SetString(PyExc_ValueError, "record type codes are 1-9");
            return NULL;
        }
        if (configure_schema(&parser.schemas[type_code], spec) < 0) {
            return NULL;
        }
        configured++;
    }
    if (configured != RECORD_TYPES) {
        PyErr_SetString(PyExc_ValueError, "a schema for each of the 9 record types");
        return NULL;
    }
    Py_INCREF(record_cls);
    parser.record_type = (PyTypeObject *)record_cls;
    Py_INCREF(schema);
    parser.schema = schema;
    Py_INCREF(type_by_name);
    parser.type_by_name = type_by_name;
    Py_INCREF(dates);
    parser.dates = dates;
    Py_INCREF(new_date);
    parser.new_date = new_date;
    Py_INCREF(record_error);
    parser.record_error = record_error;
    parser.ready = 1;
    Py_RETURN_NONE;
}

/* --- receipts and disclosures (DESIGN §5) -------------------------------------------------- */

/* The fast paths of ledger.receipts and ledger.verify: read a receipt or a disclosure (from
 * its JSON object, or straight from its JSON text) into the same frozen objects the Python
 * parse builds, and run verification steps 1-2 on them. Each function returns None at the
 * first doubt: anything unusual in the input, any rejection and any failing step. The Python
 * paths then decide, so every error and every failing verdict (its field, reason, expected and
 * computed values) comes from them; here only the common, valid case is made fast. The
 * member names are DESIGN §5's; the bounds and classes come from configure_receipts(). */

#define MAX_PROOF 64  /* static room; the configured maximum (32) is checked against it */

static struct {
    int ready;
    PyTypeObject *receipt_type, *chain_type, *batch_type, *disclosure_type;
    PyObject *receipt_slots[5];  /* chain, batch, leaf_index, leaf, proof */
    PyObject *chain_slots[4];  /* chain_id, anchor_contract, tx_hash, block_number */
    PyObject *batch_slots[4];  /* region, seq, root, size */
    PyObject *disclosure_slots[3];  /* receipt, record, salt */
    PyObject *format, *hash_alg;  /* the only supported values, str */
    PyObject *status_members[4];  /* LeafStatus by code 1-3 */
    PyObject *status_names[4];  /* their names in receipts, str */
    long long max_json_int, max_batch_size, max_version;
    Py_ssize_t max_proof_nodes;
    PyObject *names[23];  /* interned member names, see NAME_* */
} receipts;

enum {
    NAME_FORMAT, NAME_HASH_ALG, NAME_CHAIN, NAME_BATCH, NAME_LEAF, NAME_PROOF,
    NAME_CHAIN_ID, NAME_ANCHOR_CONTRACT, NAME_TX_HASH, NAME_BLOCK_NUMBER,
    NAME_REGION, NAME_SEQ, NAME_ROOT, NAME_SIZE,
    NAME_INDEX, NAME_RECORD_KEY, NAME_VERSION, NAME_STATUS, NAME_PREV_LEAF, NAME_COMMITMENT,
    NAME_RECEIPT, NAME_RECORD, NAME_SALT, NAME_COUNT
};

static const char *const MEMBER_NAMES[NAME_COUNT] = {
    "format", "hash_alg", "chain", "batch", "leaf", "proof",
    "chain_id", "anchor_contract", "tx_hash", "block_number",
    "region", "seq", "root", "size",
    "index", "record_key", "version", "status", "prev_leaf", "commitment",
    "receipt", "record", "salt",
};

/* Everything a receipt holds, read and checked, before any object is built. */
typedef struct {
    long long chain_id, block_number, region, seq, size, index, version;
    int status;  /* 1-3 */
    PyObject *address;  /* new reference: the lower-case anchor contract address */
    unsigned char tx_hash[HASH_SIZE], root[HASH_SIZE], record_key[HASH_SIZE],
        prev_leaf[HASH_SIZE], commitment[HASH_SIZE];
    Py_ssize_t proof_count;
    unsigned char proof[MAX_PROOF][HASH_SIZE];
} ReceiptValues;

/* Lower-case hex digit values, -1 for everything else (upper case included: receipts carry
 * lower-case hex only); hex digit values of either case, for \u escapes; and the bytes a
 * JSON string holds as themselves (printable ASCII but the quote and the backslash). */
static signed char HEX_VALUES[256], ANY_CASE_HEX_VALUES[256];
static unsigned char PLAIN_ASCII[256];

static void
init_tables(void)
{
    memset(HEX_VALUES, -1, sizeof(HEX_VALUES));
    memset(ANY_CASE_HEX_VALUES, -1, sizeof(ANY_CASE_HEX_VALUES));
    for (int i = 0; i < 10; i++) {
        HEX_VALUES['0' + i] = ANY_CASE_HEX_VALUES['0' + i] = (signed char)i;
    }
    for (int i = 0; i < 6; i++) {
        HEX_VALUES['a' + i] = ANY_CASE_HEX_VALUES['a' + i] = (signed char)(10 + i);
        ANY_CASE_HEX_VALUES['A' + i] = (signed char)(10 + i);
    }
    for (int c = 0; c < 256; c++) {
        PLAIN_ASCII[c] = c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
    }
}

/* Decode 2 * size lower-case hex digits; 0 if any is not one. */
static int
lower_hex(const unsigned char *digits, Py_ssize_t size, unsigned char *out)
{
    int bad = 0;
    for (Py_ssize_t i = 0; i < size; i++) {
        int high = HEX_VALUES[digits[2 * i]], low = HEX_VALUES[digits[2 * i + 1]];
        bad |= high | low;  /* negative if either is -1 */
        /* unsigned: shifting a negative int (a non-digit's -1) left is undefined in C */
        out[i] = (unsigned char)(((unsigned)high << 4) | ((unsigned)low & 0xfu));
    }
    return bad >= 0;
}

/* A str of exactly 64 lower-case hex digits, decoded. */
static int
hash_str(PyObject *value, unsigned char *out)
{
    return PyUnicode_CheckExact(value) && PyUnicode_IS_ASCII(value)
        && PyUnicode_GET_LENGTH(value) == 2 * HASH_SIZE
        && lower_hex(PyUnicode_DATA(value), HASH_SIZE, out);
}

static int
is_zero_hash(const unsigned char *hash)
{
    unsigned char any = 0;
    for (int i = 0; i < HASH_SIZE; i++) {
        any |= hash[i];
    }
    return any == 0;
}

/* The rules across members that the per-member checks cannot see. */
static int
receipt_consistent(const ReceiptValues *v)
{
    return v->index < v->size && (v->version == 1) == is_zero_hash(v->prev_leaf)
        && v->region / 10000 < 100 && parser.provinces[v->region / 10000];
}

/* obj[name] as a new reference; NULL without an error when absent. The references are
 * strong: a lookup may run a hostile key's __eq__, which could change the dict. */
static PyObject *
member_of(PyObject *dict, int name)
{
    PyObject *value = PyDict_GetItemWithError(dict, receipts.names[name]);
    Py_XINCREF(value);
    return value;
}

/* Look up count members of dict, names[first..first+count); 1 if all are present. */
static int
members_of(PyObject *dict, int first, int count, PyObject **out)
{
    for (int i = 0; i < count; i++) {
        out[i] = member_of(dict, first + i);
        if (out[i] == NULL) {
            return 0;
        }
    }
    return 1;
}

/* ledger.receipts._receipt_fast in C, on a receipt's JSON object: 1 read, 0 not (let the
 * Python paths decide), -1 error. On 1, v->address holds a new reference. */
static int
receipt_from_object(PyObject *obj, ReceiptValues *v)
{
    /* format, hash_alg, chain, batch, leaf, proof, then the members of chain, batch, leaf */
    PyObject *m[NAME_COMMITMENT + 1] = {NULL};
    int result = 0;
    if (!PyDict_CheckExact(obj) || PyDict_GET_SIZE(obj) != 6
        || !members_of(obj, NAME_FORMAT, 6, m)) {
        goto done;
    }
    PyObject *chain = m[NAME_CHAIN], *batch = m[NAME_BATCH], *leaf = m[NAME_LEAF];
    PyObject *proof = m[NAME_PROOF];
    if (!PyUnicode_CheckExact(m[NAME_FORMAT])
        || PyUnicode_Compare(m[NAME_FORMAT], receipts.format) != 0
        || !PyUnicode_CheckExact(m[NAME_HASH_ALG])
        || PyUnicode_Compare(m[NAME_HASH_ALG], receipts.hash_alg) != 0
        || !PyDict_CheckExact(chain) || PyDict_GET_SIZE(chain) != 4
        || !PyDict_CheckExact(batch) || PyDict_GET_SIZE(batch) != 4
        || !PyDict_CheckExact(leaf) || PyDict_GET_SIZE(leaf) != 6
        || !PyList_CheckExact(proof)) {
        goto done;
    }
    if (!members_of(chain, NAME_CHAIN_ID, 4, m + NAME_CHAIN_ID)
        || !members_of(batch, NAME_REGION, 4, m + NAME_REGION)
        || !members_of(leaf, NAME_INDEX, 6, m + NAME_INDEX)) {
        goto done;
    }
    PyObject *address = m[NAME_ANCHOR_CONTRACT], *tx_hash = m[NAME_TX_HASH];
    if (!integer_in(m[NAME_CHAIN_ID], 1, receipts.max_json_int, &v->chain_id)
        || !integer_in(m[NAME_BLOCK_NUMBER], 0, receipts.max_json_int, &v->block_number)
        || !PyUnicode_CheckExact(tx_hash) || !PyUnicode_IS_ASCII(tx_hash)
        || PyUnicode_GET_LENGTH(tx_hash) != 2 + 2 * HASH_SIZE
        || memcmp(PyUnicode_DATA(tx_hash), "0x", 2) != 0
        || !lower_hex((const unsigned char *)PyUnicode_DATA(tx_hash) + 2, HASH_SIZE,
                      v->tx_hash)
        /* an upper or EIP-55 mixed-case address goes to the Python path, which checks
         * the checksum */
        || !PyUnicode_CheckExact(address) || !PyUnicode_IS_ASCII(address)
        || PyUnicode_GET_LENGTH(address) != 42
        || memcmp(PyUnicode_DATA(address), "0x", 2) != 0
        || !integer_in(m[NAME_REGION], 100000, 999999, &v->region)
        || !integer_in(m[NAME_SEQ], 0, receipts.max_json_int, &v->seq)
        || !hash_str(m[NAME_ROOT], v->root)
        || !integer_in(m[NAME_SIZE], 1, receipts.max_batch_size, &v->size)
        || !integer_in(m[NAME_INDEX], 0, receipts.max_json_int, &v->index)
        || !hash_str(m[NAME_RECORD_KEY], v->record_key)
        || !integer_in(m[NAME_VERSION], 1, receipts.max_version, &v->version)
        || !PyUnicode_CheckExact(m[NAME_STATUS])
        || !hash_str(m[NAME_PREV_LEAF], v->prev_leaf)
        || !hash_str(m[NAME_COMMITMENT], v->commitment)) {
        goto done;
    }
    unsigned char address_bytes[20];
    if (!lower_hex((const unsigned char *)PyUnicode_DATA(address) + 2, 20, address_bytes)) {
        goto done;
    }
    v->status = 0;
    for (int code = 1; code <= 3; code++) {
        if (PyUnicode_Compare(m[NAME_STATUS], receipts.status_names[code]) == 0) {
            v->status = code;
        }
    }
    Py_ssize_t count = PyList_GET_SIZE(proof);
    if (v->status == 0 || count > receipts.max_proof_nodes || !receipt_consistent(v)) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        /* no Python code runs from here on: the list cannot change */
        if (!hash_str(PyList_GET_ITEM(proof, i), v->proof[i])) {
            goto done;
        }
    }
    v->proof_count = count;
    Py_INCREF(address);
    v->address = address;
    result = 1;
done:
    for (int i = 0; i <= NAME_COMMITMENT; i++) {
        Py_XDECREF(m[i]);
    }
    return PyErr_Occurred() ? -1 : result;
}

static PyObject *
new_hash(const unsigned char *hash)
{
    return PyBytes_FromStringAndSize((const char *)hash, HASH_SIZE);
}

/* The Receipt of checked values, built as the Python fast path builds it. */
static PyObject *
build_receipt(const ReceiptValues *v)
{
    PyObject *chain = NULL, *batch = NULL, *leaf = NULL, *proof = NULL, *receipt = NULL;
    PyObject *ints[7] = {NULL}, *hashes[5] = {NULL};
    long long int_values[7] = {v->chain_id, v->block_number, v->region, v->seq, v->size,
                               v->index, v->version};
    const unsigned char *hash_values[5] = {v->tx_hash, v->root, v->record_key, v->prev_leaf,
                                           v->commitment};
    for (int i = 0; i < 7; i++) {
        if ((ints[i] = PyLong_FromLongLong(int_values[i])) == NULL) {
            goto done;
        }
    }
    for (int i = 0; i < 5; i++) {
        if (i == 3 && is_zero_hash(v->prev_leaf)) {
            Py_INCREF(config.zero_hash);
            hashes[i] = config.zero_hash;
        }
        else if ((hashes[i] = new_hash(hash_values[i])) == NULL) {
            goto done;
        }
    }
    if ((proof = PyTuple_New(v->proof_count)) == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < v->proof_count; i++) {
        PyObject *node = new_hash(v->proof[i]);
        if (node == NULL) {
            goto done;
        }
        PyTuple_SET_ITEM(proof, i, node);
    }
    PyObject *chain_values[4] = {ints[0], v->address, hashes[0], ints[1]};
    PyObject *batch_values[4] = {ints[2], ints[3], hashes[1], ints[4]};
    PyObject *leaf_values[5] = {hashes[2], ints[6], receipts.status_members[v->status],
                                hashes[3], hashes[4]};
    if ((chain = new_instance(receipts.chain_type, receipts.chain_slots, chain_values, 4))
            == NULL
        || (batch = new_instance(receipts.batch_type, receipts.batch_slots, batch_values, 4))
            == NULL
        || (leaf = new_instance(config.leaf_type, config.leaf_slots, leaf_values, 5))
            == NULL) {
        goto done;
    }
    PyObject *receipt_values[5] = {chain, batch, ints[5], leaf, proof};
    receipt = new_instance(receipts.receipt_type, receipts.receipt_slots, receipt_values, 5);
done:
    for (int i = 0; i < 7; i++) {
        Py_XDECREF(ints[i]);
    }
    for (int i = 0; i < 5; i++) {
        Py_XDECREF(hashes[i]);
    }
    Py_XDECREF(proof);
    Py_XDECREF(chain);
    Py_XDECREF(batch);
    Py_XDECREF(leaf);
    return receipt;
}

static PyObject *
build_disclosure(const ReceiptValues *v, PyObject *record, const unsigned char *salt)
{
    PyObject *receipt = build_receipt(v);
    if (receipt == NULL) {
        return NULL;
    }
    PyObject *salt_bytes = new_hash(salt);
    if (salt_bytes == NULL) {
        Py_DECREF(receipt);
        return NULL;
    }
    PyObject *values[3] = {receipt, record, salt_bytes};
    PyObject *disclosure = new_instance(receipts.disclosure_type, receipts.disclosure_slots,
                                        values, 3);
    Py_DECREF(receipt);
    Py_DECREF(salt_bytes);
    return disclosure;
}

static int
receipts_ready(void)
{
    if (!receipts.ready || !config.ready || !parser.ready) {
        PyErr_SetString(PyExc_RuntimeError, "configure_receipts() has not succeeded");
        return 0;
    }
    return 1;
}

PyDoc_STRVAR(parse_receipt_doc,
"parse_receipt(obj: object) -> Receipt | None\n\n"
"Receipt.from_json's fast path: the Receipt if obj is a receipt's JSON object that the\n"
"Python parse accepts as is, else None.");

static PyObject *
parse_receipt(PyObject *module, PyObject *obj)
{
    if (!receipts_ready()) {
        return NULL;
    }
    ReceiptValues v;
    v.address = NULL;
    int status = receipt_from_object(obj, &v);
    if (status <= 0) {
        if (status < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    PyObject *receipt = build_receipt(&v);
    Py_DECREF(v.address);
    return receipt;
}

PyDoc_STRVAR(parse_disclosure_doc,
"parse_disclosure(obj: object) -> Disclosure | None\n\n"
"Disclosure.from_json's fast path: the Disclosure if obj is a disclosure's JSON object that\n"
"the Python parse accepts as is, else None.");

static PyObject *
parse_disclosure(PyObject *module, PyObject *obj)
{
    if (!receipts_ready()) {
        return NULL;
    }
    if (!PyDict_CheckExact(obj) || PyDict_GET_SIZE(obj) != 3) {
        Py_RETURN_NONE;
    }
    PyObject *m[3] = {NULL}, *record = NULL, *result = NULL;
    ReceiptValues v;
    v.address = NULL;
    unsigned char salt[HASH_SIZE];
    int status = 0;
    if (members_of(obj, NAME_RECEIPT, 3, m) && hash_str(m[2], salt)) {
        status = receipt_from_object(m[0], &v);
    }
    if (status > 0) {
        record = parse_record(module, m[1]);
        if (record == NULL) {
            status = -1;
        }
        else if (record == Py_None) {
            status = 0;
        }
    }
    if (status > 0) {
        result = build_disclosure(&v, record, salt);
    }
    else if (status == 0 && !PyErr_Occurred()) {
        result = Py_None;
        Py_INCREF(result);
    }
    for (int i = 0; i < 3; i++) {
        Py_XDECREF(m[i]);
    }
    Py_XDECREF(record);
    Py_XDECREF(v.address);
    return result;
}

/* --- disclosures from JSON text ----------------------------------------------------------- */

/* A JSON reader for the one document a disclosure is. It reads what json.loads reads, and
 * gives up (returns 0, no error set) on anything that json.loads could read differently or
 * that the Python checks could reject: floats, integers of more than 18 digits, NaN and
 * Infinity, lone surrogates (escaped or encoded), invalid UTF-8, duplicate receipt members,
 * nesting deeper than MAX_DEPTH. The receipt's members are decoded straight into a
 * ReceiptValues; the record becomes dicts, lists, str and int as json.loads makes them
 * (dict members in document order, a repeated name keeping its last value), for
 * parse_record. */

#define MAX_DEPTH 64

typedef struct {
    const unsigned char *p, *end;
} Text;

static inline void
skip_space(Text *t)
{
    while (t->p < t->end
           && (*t->p == ' ' || *t->p == '\n' || *t->p == '\r' || *t->p == '\t')) {
        t->p++;
    }
}

/* Skip white space and one expected byte. */
static inline int
expect(Text *t, unsigned char c)
{
    skip_space(t);
    if (t->p < t->end && *t->p == c) {
        t->p++;
        return 1;
    }
    return 0;
}

/* A string without escapes: its UTF-8 bytes between the quotes. */
static int
raw_string(Text *t, const unsigned char **start, Py_ssize_t *length)
{
    skip_space(t);
    if (t->p >= t->end || *t->p != '"') {
        return 0;
    }
    const unsigned char *body = t->p + 1;
    const unsigned char *close = memchr(body, '"', (size_t)(t->end - body));
    if (close == NULL) {
        return 0;
    }
    for (const unsigned char *q = body; q < close; q++) {
        if (*q == '\\' || *q < 0x20) {  /* an escape, maybe of that quote; a control */
            return 0;
        }
    }
    *start = body;
    *length = close - body;
    t->p = close + 1;
    return 1;
}

static int
raw_string_is(Text *t, const char *expected, Py_ssize_t expected_length)
{
    const unsigned char *start;
    Py_ssize_t length;
    return raw_string(t, &start, &length) && length == expected_length
        && memcmp(start, expected, (size_t)length) == 0;
}

/* "<64 lower-case hex digits>": a quote, a backslash or a control among them is no digit. */
static int
json_hash(Text *t, unsigned char *out)
{
    skip_space(t);
    const unsigned char *p = t->p;
    if (t->end - p < 2 + 2 * HASH_SIZE || p[0] != '"' || p[1 + 2 * HASH_SIZE] != '"'
        || !lower_hex(p + 1, HASH_SIZE, out)) {
        return 0;
    }
    t->p = p + 2 + 2 * HASH_SIZE;
    return 1;
}

/* A non-negative integer in [minimum, maximum]: digits only, no sign, fraction or exponent
 * (those, and leading zeros, go to json.loads). */
static int
json_count(Text *t, long long minimum, long long maximum, long long *out)
{
    skip_space(t);
    const unsigned char *q = t->p;
    long long value = 0;
    int digits = 0;
    while (q < t->end && *q >= '0' && *q <= '9') {
        if (++digits > 18) {
            return 0;
        }
        value = value * 10 + (*q++ - '0');
    }
    if (digits == 0 || (digits > 1 && *t->p == '0')
        || (q < t->end && (*q == '.' || *q == 'e' || *q == 'E'))) {
        return 0;
    }
    t->p = q;
    *out = value;
    return minimum <= value && value <= maximum;
}

/* Four hex digits of a \u escape, either case. */
static int
escape_unit(const unsigned char *q, Py_UCS4 *unit)
{
    int a = ANY_CASE_HEX_VALUES[q[0]], b = ANY_CASE_HEX_VALUES[q[1]];
    int c = ANY_CASE_HEX_VALUES[q[2]], d = ANY_CASE_HEX_VALUES[q[3]];
    if ((a | b | c | d) < 0) {
        return 0;
    }
    *unit = (Py_UCS4)((a << 12) | (b << 8) | (c << 4) | d);
    return 1;
}

/* The next character of a string's body at *q (not its closing quote): an escape, an ASCII
 * byte or a strictly valid UTF-8 sequence (no surrogates, no overlong forms). 0 to give up. */
static int
next_char(const unsigned char **q, const unsigned char *end, Py_UCS4 *out)
{
    const unsigned char *s = *q;
    unsigned char c = s[0];
    if (c < 0x20) {
        return 0;  /* json.loads refuses raw control characters */
    }
    if (c == '\\') {
        if (end - s < 2) {
            return 0;
        }
        switch (s[1]) {
        case '"': *out = '"'; break;
        case '\\': *out = '\\'; break;
        case '/': *out = '/'; break;
        case 'b': *out = '\b'; break;
        case 'f': *out = '\f'; break;
        case 'n': *out = '\n'; break;
        case 'r': *out = '\r'; break;
        case 't': *out = '\t'; break;
        case 'u': {
            Py_UCS4 unit, low;
            if (end - s < 6 || !escape_unit(s + 2, &unit)) {
                return 0;
            }
            if (unit >= 0xdc00 && unit <= 0xdfff) {
                return 0;  /* a lone low surrogate */
            }
            if (unit >= 0xd800 && unit <= 0xdbff) {
                /* json.loads joins a surrogate pair; a lone one it keeps, and so gives up */
                if (end - s < 12 || s[6] != '\\' || s[7] != 'u' || !escape_unit(s + 8, &low)
                    || low < 0xdc00 || low > 0xdfff) {
                    return 0;
                }
                *out = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
                *q = s + 12;
                return 1;
            }
            *out = unit;
            *q = s + 6;
            return 1;
        }
        default:
            return 0;
        }
        *q = s + 2;
        return 1;
    }
    if (c < 0x80) {
        *out = c;
        *q = s + 1;
        return 1;
    }
    Py_ssize_t available = end - s;
    if (c >= 0xc2 && c <= 0xdf) {
        if (available < 2 || (s[1] & 0xc0) != 0x80) {
            return 0;
        }
        *out = ((Py_UCS4)(c & 0x1f) << 6) | (s[1] & 0x3f);
        *q = s + 2;
        return 1;
    }
    if (c >= 0xe0 && c <= 0xef) {
        if (available < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80
            || (c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f)) {
            return 0;  /* overlong, or a surrogate */
        }
        *out = ((Py_UCS4)(c & 0x0f) << 12) | ((Py_UCS4)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
        *q = s + 3;
        return 1;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (available < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80
            || (s[3] & 0xc0) != 0x80 || (c == 0xf0 && s[1] < 0x90)
            || (c == 0xf4 && s[1] > 0x8f)) {
            return 0;
        }
        *out = ((Py_UCS4)(c & 0x07) << 18) | ((Py_UCS4)(s[1] & 0x3f) << 12)
            | ((Py_UCS4)(s[2] & 0x3f) << 6) | (s[3] & 0x3f);
        *q = s + 4;
        return 1;
    }
    return 0;
}

/* A JSON string as a new str: 1, 0 to give up, -1 error. */
static int
json_string(Text *t, PyObject **out)
{
    const unsigned char *start = t->p + 1, *q = start, *end = t->end;
    Py_ssize_t count = 0;
    Py_UCS4 widest = 0, c;
    int escaped = 0;
    while (1) {
        const unsigned char *plain = q;
        while (q < end && PLAIN_ASCII[*q]) {
            q++;
        }
        if (q > plain) {
            count += q - plain;
            widest = widest < 0x7f ? 0x7f : widest;  /* any ASCII maximum makes an ASCII str */
        }
        if (q >= end) {
            return 0;
        }
        if (*q == '"') {
            break;
        }
        escaped |= *q == '\\';
        if (!next_char(&q, end, &c)) {
            return 0;
        }
        widest = c > widest ? c : widest;
        count++;
    }
    const unsigned char *close = q;
    PyObject *text;
    if (!escaped && widest < 0x80) {
        text = PyUnicode_New(count, 0x7f);
        if (text != NULL) {
            memcpy(PyUnicode_DATA(text), start, (size_t)count);
        }
    }
    else {
        text = PyUnicode_New(count, widest);
        if (text != NULL) {
            int kind = PyUnicode_KIND(text);
            void *data = PyUnicode_DATA(text);
            q = start;
            for (Py_ssize_t i = 0; i < count; i++) {
                if (PLAIN_ASCII[*q]) {
                    c = *q++;
                }
                else {
                    next_char(&q, close, &c);  /* read once already: cannot fail */
                }
                PyUnicode_WRITE(kind, data, i, c);
            }
        }
    }
    if (text == NULL) {
        return -1;
    }
    t->p = close + 1;
    *out = text;
    return 1;
}

/* An integer as json.loads reads it, if it has at most 18 digits and no fraction or
 * exponent (int("-0") is 0, as here). */
static int
json_integer(Text *t, PyObject **out)
{
    const unsigned char *q = t->p;
    int negative = 0, digits = 0;
    long long value = 0;
    if (*q == '-') {
        negative = 1;
        q++;
    }
    const unsigned char *first = q;
    while (q < t->end && *q >= '0' && *q <= '9') {
        if (++digits > 18) {
            return 0;
        }
        value = value * 10 + (*q++ - '0');
    }
    if (digits == 0 || (digits > 1 && *first == '0')
        || (q < t->end && (*q == '.' || *q == 'e' || *q == 'E'))) {
        return 0;
    }
    *out = PyLong_FromLongLong(negative ? -value : value);
    if (*out == NULL) {
        return -1;
    }
    t->p = q;
    return 1;
}

static int json_value(Text *t, int depth, PyObject **out);

/* The member names of records (the envelope's and every payload's), so that a record's dict
 * gets the same str objects as parse_record looks up: no hashing at insertion, and lookups
 * that match by identity. Open addressing; filled by configure_receipts(). */
#define KNOWN_NAMES 256

static PyObject *known_names[KNOWN_NAMES];

static unsigned
name_slot(const unsigned char *name, Py_ssize_t length)
{
    unsigned hash = (unsigned)length * 131u;
    if (length > 0) {
        hash += name[0] * 31u + name[length - 1] * 7u + name[length / 2];
    }
    return hash & (KNOWN_NAMES - 1);
}

/* The known name with these bytes (borrowed), or NULL. */
static PyObject *
known_name(const unsigned char *name, Py_ssize_t length)
{
    unsigned slot = name_slot(name, length);
    for (int probes = 0; probes < KNOWN_NAMES; probes++) {
        PyObject *held = known_names[slot];
        if (held == NULL) {
            return NULL;
        }
        if (PyUnicode_GET_LENGTH(held) == length
            && memcmp(PyUnicode_DATA(held), name, (size_t)length) == 0) {
            return held;
        }
        slot = (slot + 1) & (KNOWN_NAMES - 1);
    }
    return NULL;
}

static void
add_known_name(PyObject *name)
{
    static int count = 0;
    if (!PyUnicode_CheckExact(name) || !PyUnicode_IS_ASCII(name)
        || 2 * count >= KNOWN_NAMES) {  /* at most half full: probes stay short */
        return;
    }
    const unsigned char *bytes = PyUnicode_DATA(name);
    Py_ssize_t length = PyUnicode_GET_LENGTH(name);
    if (known_name(bytes, length) != NULL) {
        return;
    }
    unsigned slot = name_slot(bytes, length);
    while (known_names[slot] != NULL) {
        slot = (slot + 1) & (KNOWN_NAMES - 1);
    }
    Py_INCREF(name);
    known_names[slot] = name;
    count++;
}

static int
json_object(Text *t, int depth, PyObject **out)
{
    PyObject *dict = PyDict_New();
    if (dict == NULL) {
        return -1;
    }
    t->p++;  /* { */
    int status = 1;
    if (expect(t, '}')) {
        *out = dict;
        return 1;
    }
    do {
        PyObject *key = NULL, *value = NULL;
        skip_space(t);
        if (t->p >= t->end || *t->p != '"') {
            status = 0;
            break;
        }
        const Text before = *t;
        const unsigned char *name;
        Py_ssize_t length;
        if (raw_string(t, &name, &length) && (key = known_name(name, length)) != NULL) {
            Py_INCREF(key);
        }
        else {
            *t = before;
            if ((status = json_string(t, &key)) <= 0) {
                break;
            }
        }
        if (!expect(t, ':')) {
            Py_DECREF(key);
            status = 0;
            break;
        }
        if ((status = json_value(t, depth + 1, &value)) <= 0) {
            Py_DECREF(key);
            break;
        }
        /* exact str keys: no Python code runs, and the last of a repeated name wins */
        status = PyDict_SetItem(dict, key, value) < 0 ? -1 : 1;
        Py_DECREF(key);
        Py_DECREF(value);
        if (status < 0) {
            break;
        }
    } while (expect(t, ','));
    if (status > 0 && !expect(t, '}')) {
        status = 0;
    }
    if (status <= 0) {
        Py_DECREF(dict);
        return status;
    }
    *out = dict;
    return 1;
}

static int
json_array(Text *t, int depth, PyObject **out)
{
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return -1;
    }
    t->p++;  /* [ */
    int status = 1;
    if (expect(t, ']')) {
        *out = list;
        return 1;
    }
    do {
        PyObject *value = NULL;
        if ((status = json_value(t, depth + 1, &value)) <= 0) {
            break;
        }
        status = PyList_Append(list, value) < 0 ? -1 : 1;
        Py_DECREF(value);
        if (status < 0) {
            break;
        }
    } while (expect(t, ','));
    if (status > 0 && !expect(t, ']')) {
        status = 0;
    }
    if (status <= 0) {
        Py_DECREF(list);
        return status;
    }
    *out = list;
    return 1;
}

static int
json_literal(Text *t, const char *word, Py_ssize_t length, PyObject *value, PyObject **out)
{
    if (t->end - t->p < length || memcmp(t->p, word, (size_t)length) != 0) {
        return 0;
    }
    t->p += length;
    Py_INCREF(value);
    *out = value;
    return 1;
}

/* Any JSON value as json.loads makes it: 1, 0 to give up, -1 error. */
static int
json_value(Text *t, int depth, PyObject **out)
{
    skip_space(t);
    if (t->p >= t->end || depth > MAX_DEPTH) {
        return 0;
    }
    switch (*t->p) {
    case '{':
        return json_object(t, depth, out);
    case '[':
        return json_array(t, depth, out);
    case '"':
        return json_string(t, out);
    case 't':
        return json_literal(t, "true", 4, Py_True, out);
    case 'f':
        return json_literal(t, "false", 5, Py_False, out);
    case 'n':
        return json_literal(t, "null", 4, Py_None, out);
    default:
        if (*t->p == '-' || (*t->p >= '0' && *t->p <= '9')) {
            return json_integer(t, out);
        }
        return 0;  /* NaN, Infinity, or not JSON */
    }
}

/* An object member's name, if it is one of names[first..first+count) written without
 * escapes; its index, or -1. */
static int
json_member_name(Text *t, int first, int count)
{
    const unsigned char *start;
    Py_ssize_t length;
    if (!raw_string(t, &start, &length) || !expect(t, ':')) {
        return -1;
    }
    for (int i = first; i < first + count; i++) {
        PyObject *name = receipts.names[i];  /* interned ASCII */
        if (PyUnicode_GET_LENGTH(name) == length
            && memcmp(PyUnicode_DATA(name), start, (size_t)length) == 0) {
            return i;
        }
    }
    return -1;
}

static int
json_status(Text *t, int *status)
{
    const unsigned char *start;
    Py_ssize_t length;
    if (!raw_string(t, &start, &length)) {
        return 0;
    }
    for (int code = 1; code <= 3; code++) {
        PyObject *name = receipts.status_names[code];
        if (PyUnicode_GET_LENGTH(name) == length
            && memcmp(PyUnicode_DATA(name), start, (size_t)length) == 0) {
            *status = code;
            return 1;
        }
    }
    return 0;
}

static int
json_proof(Text *t, ReceiptValues *v)
{
    v->proof_count = 0;
    if (!expect(t, '[')) {
        return 0;
    }
    if (expect(t, ']')) {
        return 1;
    }
    do {
        if (v->proof_count >= receipts.max_proof_nodes
            || !json_hash(t, v->proof[v->proof_count])) {
            return 0;
        }
        v->proof_count++;
    } while (expect(t, ','));
    return expect(t, ']');
}

/* The lower-case address as a new str (upper and EIP-55 case go to the Python path). */
static int
json_address(Text *t, PyObject **out)
{
    const unsigned char *start;
    Py_ssize_t length;
    unsigned char address[20];
    if (!raw_string(t, &start, &length) || length != 42 || memcmp(start, "0x", 2) != 0
        || !lower_hex(start + 2, 20, address)) {
        return 0;
    }
    *out = PyUnicode_New(42, 0x7f);
    if (*out == NULL) {
        return -1;
    }
    memcpy(PyUnicode_DATA(*out), start, 42);
    return 1;
}

/* One receipt member's value: 1, 0 to give up, -1 error. */
static int
json_receipt_member(Text *t, int name, ReceiptValues *v, unsigned *seen);

/* An object whose members are exactly names[first..first+count), each once. */
static int
json_members(Text *t, int first, int count, ReceiptValues *v, unsigned *seen)
{
    if (!expect(t, '{')) {
        return 0;
    }
    int read = 0;
    do {
        int name = json_member_name(t, first, count);
        if (name < 0 || (*seen & (1u << name))) {
            return 0;
        }
        *seen |= 1u << name;
        int status = json_receipt_member(t, name, v, seen);
        if (status <= 0) {
            return status;
        }
        read++;
    } while (expect(t, ','));
    return read == count && expect(t, '}');
}

static int
json_receipt_member(Text *t, int name, ReceiptValues *v, unsigned *seen)
{
    switch (name) {
    case NAME_FORMAT:
        return raw_string_is(t, PyUnicode_DATA(receipts.format),
                             PyUnicode_GET_LENGTH(receipts.format));
    case NAME_HASH_ALG:
        return raw_string_is(t, PyUnicode_DATA(receipts.hash_alg),
                             PyUnicode_GET_LENGTH(receipts.hash_alg));
    case NAME_CHAIN:
        return json_members(t, NAME_CHAIN_ID, 4, v, seen);
    case NAME_BATCH:
        return json_members(t, NAME_REGION, 4, v, seen);
    case NAME_LEAF:
        return json_members(t, NAME_INDEX, 6, v, seen);
    case NAME_PROOF:
        return json_proof(t, v);
    case NAME_CHAIN_ID:
        return json_count(t, 1, receipts.max_json_int, &v->chain_id);
    case NAME_ANCHOR_CONTRACT:
        if (v->address != NULL) {
            return 0;
        }
        return json_address(t, &v->address);
    case NAME_TX_HASH: {
        const unsigned char *start;
        Py_ssize_t length;
        return raw_string(t, &start, &length) && length == 2 + 2 * HASH_SIZE
            && memcmp(start, "0x", 2) == 0 && lower_hex(start + 2, HASH_SIZE, v->tx_hash);
    }
    case NAME_BLOCK_NUMBER:
        return json_count(t, 0, receipts.max_json_int, &v->block_number);
    case NAME_REGION:
        return json_count(t, 100000, 999999, &v->region);
    case NAME_SEQ:
        return json_count(t, 0, receipts.max_json_int, &v->seq);
    case NAME_ROOT:
        return json_hash(t, v->root);
    case NAME_SIZE:
        return json_count(t, 1, receipts.max_batch_size, &v->size);
    case NAME_INDEX:
        return json_count(t, 0, receipts.max_json_int, &v->index);
    case NAME_RECORD_KEY:
        return json_hash(t, v->record_key);
    case NAME_VERSION:
        return json_count(t, 1, receipts.max_version, &v->version);
    case NAME_STATUS:
        return json_status(t, &v->status);
    case NAME_PREV_LEAF:
        return json_hash(t, v->prev_leaf);
    case NAME_COMMITMENT:
        return json_hash(t, v->commitment);
    }
    return 0;
}

/* Read a disclosure document: 1 (v, *record and salt filled), 0 to give up, -1 error. */
static int
json_disclosure(Text *t, ReceiptValues *v, PyObject **record, unsigned char *salt)
{
    unsigned seen = 0, receipt_seen = 0;
    int status = 1;
    if (!expect(t, '{')) {
        return 0;
    }
    do {
        int name = json_member_name(t, NAME_RECEIPT, 3);
        if (name < 0 || (seen & (1u << (name - NAME_RECEIPT)))) {
            return 0;
        }
        seen |= 1u << (name - NAME_RECEIPT);
        if (name == NAME_RECEIPT) {
            status = json_members(t, NAME_FORMAT, 6, v, &receipt_seen);
        }
        else if (name == NAME_RECORD) {
            skip_space(t);
            status = t->p < t->end && *t->p == '{' ? json_object(t, 1, record) : 0;
        }
        else {
            status = json_hash(t, salt);
        }
        if (status <= 0) {
            return status;
        }
    } while (expect(t, ','));
    if (seen != 7 || !expect(t, '}')) {
        return 0;
    }
    skip_space(t);
    return t->p == t->end && receipt_consistent(v);  /* json.loads: no "Extra data" */
}

PyDoc_STRVAR(parse_disclosure_json_doc,
"parse_disclosure_json(data: bytes | str) -> Disclosure | None\n\n"
"Disclosure.from_json(json.loads(data)) if that accepts data and nothing in data could read\n"
"differently (see ledger/_speedups.c), else None.");

static PyObject *
parse_disclosure_json(PyObject *module, PyObject *data)
{
    if (!receipts_ready()) {
        return NULL;
    }
    PyObject *utf8 = NULL;  /* the UTF-8 copy of a non-ASCII str */
    Text t;
    if (PyBytes_CheckExact(data)) {
        t.p = (const unsigned char *)PyBytes_AS_STRING(data);
        t.end = t.p + PyBytes_GET_SIZE(data);
    }
    else if (PyUnicode_CheckExact(data) && PyUnicode_IS_ASCII(data)) {
        t.p = PyUnicode_DATA(data);
        t.end = t.p + PyUnicode_GET_LENGTH(data);
    }
    else if (PyUnicode_CheckExact(data)) {
        utf8 = PyUnicode_AsUTF8String(data);
        if (utf8 == NULL) {  /* lone surrogates: json.loads decides */
            PyErr_Clear();
            Py_RETURN_NONE;
        }
        t.p = (const unsigned char *)PyBytes_AS_STRING(utf8);
        t.end = t.p + PyBytes_GET_SIZE(utf8);
    }
    else {
        Py_RETURN_NONE;
    }
    /* json.loads guesses UTF-16 or UTF-32 from zero bytes among the first four, and takes
     * a UTF-8 byte order mark: a document starting with '{' or white space and holding no
     * zero byte (refused below wherever it stands) is read as UTF-8, as here. */
    ReceiptValues v;
    v.address = NULL;
    v.status = 0;
    PyObject *record_json = NULL, *record = NULL, *result = NULL;
    unsigned char salt[HASH_SIZE];
    int status = json_disclosure(&t, &v, &record_json, salt);
    if (status > 0) {
        record = parse_record(module, record_json);
        if (record == NULL) {
            status = -1;
        }
        else if (record == Py_None) {
            status = 0;
        }
    }
    if (status > 0) {
        result = build_disclosure(&v, record, salt);
    }
    else if (status == 0) {
        result = Py_None;
        Py_INCREF(result);
    }
    Py_XDECREF(record);
    Py_XDECREF(record_json);
    Py_XDECREF(v.address);
    Py_XDECREF(utf8);
    return result;
}

/* --- verification steps 1-2 ---------------------------------------------------------------- */

/* Read slots[0..count) of instance as new references into out; 0 and no error set when one
 * is unset (the caller lets the Python path decide). */
static int
read_slots(PyObject *instance, PyObject **slots, int count, PyObject **out)
{
    for (int i = 0; i < count; i++) {
        out[i] = get_slot(slots[i], instance);
        if (out[i] == NULL) {
            return 0;
        }
    }
    return 1;
}

/* An exact bytes object of 32 bytes. */
static const unsigned char *
hash_bytes(PyObject *value)
{
    if (!PyBytes_CheckExact(value) || PyBytes_GET_SIZE(value) != HASH_SIZE) {
        return NULL;
    }
    return (const unsigned char *)PyBytes_AS_STRING(value);
}

/* RFC 6962 leaf hash of a leaf's members, as Leaf.leaf_hash computes it. */
static void
hash_leaf(const unsigned char *record_key, uint32_t version, unsigned char status,
          const unsigned char *prev_leaf, const unsigned char *commitment, unsigned char *out)
{
    unsigned char version_bytes[4] = {(unsigned char)(version >> 24),
                                      (unsigned char)(version >> 16),
                                      (unsigned char)(version >> 8), (unsigned char)version};
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, LEAF_PREFIX, LEAF_PREFIX_LEN);
    SHA256_Update(&ctx, record_key, HASH_SIZE);
    SHA256_Update(&ctx, version_bytes, 4);
    SHA256_Update(&ctx, &status, 1);
    SHA256_Update(&ctx, prev_leaf, HASH_SIZE);
    SHA256_Update(&ctx, commitment, HASH_SIZE);
    SHA256_Final(out, &ctx);
}

/* Step 1 of a Disclosure: record key, commitment and region match the leaf. 1 passed, 0
 * not or in doubt (Python decides); errors are cleared. */
static int
record_step(PyObject *disclosure, const unsigned char *record_key,
            const unsigned char *commitment, long long batch_region)
{
    PyObject *parts[3] = {NULL}, *owned[3] = {NULL};
    Item item;
    int passed = 0;
    if (!read_slots(disclosure, receipts.disclosure_slots, 3, parts)) {
        goto done;
    }
    const unsigned char *salt = hash_bytes(parts[2]);
    /* Record checked its members on construction; these guard what _record_key assumes */
    if (salt == NULL || !Py_IS_TYPE(parts[1], config.record_type)
        || read_record(parts[1], &item, owned) < 0 || !PyUnicode_IS_ASCII(owned[0])
        || item.type_code < 1 || item.type_code > RECORD_TYPES) {
        goto done;
    }
    unsigned char computed[HASH_SIZE];
    item_record_key(&item, computed);
    if (memcmp(computed, record_key, HASH_SIZE) != 0) {
        goto done;
    }
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, COMMIT_DOMAIN, COMMIT_DOMAIN_LEN);
    SHA256_Update(&ctx, salt, HASH_SIZE);
    SHA256_Update(&ctx, item.canonical, (size_t)item.canonical_len);
    SHA256_Final(computed, &ctx);
    passed = memcmp(computed, commitment, HASH_SIZE) == 0
        && (long long)item.region == batch_region;
done:
    for (int i = 0; i < 3; i++) {
        Py_XDECREF(parts[i]);
        Py_XDECREF(owned[i]);
    }
    return passed;
}

/* Bits needed for x: Python's int.bit_length. */
static int
bit_length(unsigned long long x)
{
    int bits = 0;
    while (x) {
        bits++;
        x >>= 1;
    }
    return bits;
}

PyDoc_STRVAR(check_offline_doc,
"check_offline(item: Receipt | Disclosure) -> bytes | None\n\n"
"The leaf hash if verification steps 1 (a Disclosure only) and 2 pass on item, else None:\n"
"the Python steps then run and name the failure.");

static PyObject *
check_offline(PyObject *module, PyObject *item)
{
    if (!receipts_ready()) {
        return NULL;
    }
    PyObject *receipt = NULL, *parts[5] = {NULL}, *batch[4] = {NULL}, *leaf[5] = {NULL};
    PyObject *result = NULL;
    int is_disclosure = Py_IS_TYPE(item, receipts.disclosure_type);
    if (is_disclosure) {
        receipt = get_slot(receipts.disclosure_slots[0], item);
    }
    else if (Py_IS_TYPE(item, receipts.receipt_type)) {
        receipt = item;
        Py_INCREF(receipt);
    }
    if (receipt == NULL || !Py_IS_TYPE(receipt, receipts.receipt_type)
        || !read_slots(receipt, receipts.receipt_slots, 5, parts)
        || !Py_IS_TYPE(parts[1], receipts.batch_type)
        || !Py_IS_TYPE(parts[3], config.leaf_type)
        || !read_slots(parts[1], receipts.batch_slots, 4, batch)
        || !read_slots(parts[3], config.leaf_slots, 5, leaf)
        || !PyTuple_CheckExact(parts[4])) {
        goto done;
    }
    long long region, size, index, version, status;
    const unsigned char *root = hash_bytes(batch[2]), *record_key = hash_bytes(leaf[0]);
    const unsigned char *prev_leaf = hash_bytes(leaf[3]), *commitment = hash_bytes(leaf[4]);
    /* LeafStatus is an int subclass: read its value, not its type */
    long long status_code = PyLong_Check(leaf[2]) ? PyLong_AsLongLong(leaf[2]) : 0;
    if (status_code == -1 && PyErr_Occurred()) {
        goto done;
    }
    status = status_code;
    if (root == NULL || record_key == NULL || prev_leaf == NULL || commitment == NULL
        || !integer_in(batch[0], 0, LLONG_MAX, &region)
        || !integer_in(batch[3], 1, receipts.max_batch_size, &size)
        || !integer_in(parts[2], 0, size - 1, &index)
        || !integer_in(leaf[1], 1, receipts.max_version, &version)
        || status < 1 || status > 3) {
        goto done;
    }
    if (is_disclosure && !record_step(item, record_key, commitment, region)) {
        goto done;
    }
    unsigned char hash[HASH_SIZE], leaf_hash[HASH_SIZE];
    hash_leaf(record_key, (uint32_t)version, (unsigned char)status, prev_leaf, commitment,
              leaf_hash);
    /* RFC 9162 §2.1.3.2, as ledger.merkle.root_from_inclusion_proof folds it */
    PyObject *proof = parts[4];
    Py_ssize_t length = PyTuple_GET_SIZE(proof);
    unsigned long long position = (unsigned long long)index;
    int inner = bit_length(position ^ (unsigned long long)(size - 1));
    int border = 0;
    for (unsigned long long rest = position >> inner; rest; rest >>= 1) {
        border += (int)(rest & 1);
    }
    if (length != inner + border) {
        goto done;
    }
    memcpy(hash, leaf_hash, HASH_SIZE);
    for (Py_ssize_t k = 0; k < length; k++) {
        const unsigned char *node = hash_bytes(PyTuple_GET_ITEM(proof, k));
        if (node == NULL) {
            goto done;
        }
        if (k >= inner || ((position >> k) & 1)) {
            hash_children(node, hash, hash);
        }
        else {
            hash_children(hash, node, hash);
        }
    }
    if (memcmp(hash, root, HASH_SIZE) == 0) {
        result = new_hash(leaf_hash);
    }
done:
    Py_XDECREF(receipt);
    for (int i = 0; i < 5; i++) {
        Py_XDECREF(parts[i]);
        Py_XDECREF(leaf[i]);
    }
    for (int i = 0; i < 4; i++) {
        Py_XDECREF(batch[i]);
    }
    if (result == NULL) {
        if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_Exception)) {
            return NULL;  /* KeyboardInterrupt and the like are not for us to swallow */
        }
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    return result;
}

PyDoc_STRVAR(configure_receipts_doc,
"configure_receipts(receipt_cls, receipt_slots, chain_cls, chain_slots, batch_cls,\n"
"                   batch_slots, disclosure_cls, disclosure_slots, statuses, format,\n"
"                   hash_alg, max_proof_nodes, max_json_int, max_batch_size,\n"
"                   max_version) -> None\n\n"
"Hand the receipt fast paths the classes of ledger.receipts, their slot descriptors, the\n"
"leaf statuses by name and the bounds (see _configure_native there).");

static PyObject *
configure_receipts(PyObject *module, PyObject *args)
{
    PyObject *types[4], *slots[4], *statuses, *format, *hash_alg;
    Py_ssize_t max_proof_nodes;
    long long max_json_int, max_batch_size, max_version;
    if (receipts.ready) {
        PyErr_SetString(PyExc_RuntimeError, "configure_receipts() runs once");
        return NULL;
    }
    if (!config.ready || !parser.ready) {
        PyErr_SetString(PyExc_RuntimeError, "configure() and configure_records() come first");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!O!O!O!O!UUnLLL", &PyType_Type, &types[0],
                          &PyTuple_Type, &slots[0], &PyType_Type, &types[1], &PyTuple_Type,
                          &slots[1], &PyType_Type, &types[2], &PyTuple_Type, &slots[2],
                          &PyType_Type, &types[3], &PyTuple_Type, &slots[3], &PyDict_Type,
                          &statuses, &format, &hash_alg, &max_proof_nodes, &max_json_int,
                          &max_batch_size, &max_version)) {
        return NULL;
    }
    if (max_proof_nodes < 0 || max_proof_nodes > MAX_PROOF || max_json_int < 1
        || max_json_int > (1LL << 62) || max_batch_size < 1 || max_batch_size > UINT32_MAX
        || max_version < 1 || max_version > UINT32_MAX || !PyUnicode_IS_ASCII(format)
        || !PyUnicode_IS_ASCII(hash_alg) || PyDict_GET_SIZE(statuses) != 3) {
        PyErr_SetString(PyExc_ValueError, "bad receipt configuration");
        return NULL;
    }
    if (check_slots(slots[0], receipts.receipt_slots, 5, "receipt_slots") < 0
        || check_slots(slots[1], receipts.chain_slots, 4, "chain_slots") < 0
        || check_slots(slots[2], receipts.batch_slots, 4, "batch_slots") < 0
        || check_slots(slots[3], receipts.disclosure_slots, 3, "disclosure_slots") < 0
        || set_type(types[0], &receipts.receipt_type) < 0
        || set_type(types[1], &receipts.chain_type) < 0
        || set_type(types[2], &receipts.batch_type) < 0
        || set_type(types[3], &receipts.disclosure_type) < 0) {
        return NULL;
    }
    PyObject *name, *member;
    Py_ssize_t position = 0;
    while (PyDict_Next(statuses, &position, &name, &member)) {
        long code = PyLong_Check(member) ? PyLong_AsLong(member) : -1;
        if (!PyUnicode_CheckExact(name) || !PyUnicode_IS_ASCII(name) || code < 1 || code > 3) {
            PyErr_Clear();
            PyErr_SetString(PyExc_ValueError, "statuses: name -> LeafStatus 1-3");
            return NULL;
        }
        Py_INCREF(name);
        Py_XSETREF(receipts.status_names[code], name);
        Py_INCREF(member);
        Py_XSETREF(receipts.status_members[code], member);
    }
    for (int code = 1; code <= 3; code++) {
        if (receipts.status_names[code] == NULL) {
            PyErr_SetString(PyExc_ValueError, "statuses: one name for each of 1-3");
            return NULL;
        }
    }
    for (int i = 0; i < NAME_COUNT; i++) {
        if (receipts.names[i] == NULL
            && (receipts.names[i] = PyUnicode_InternFromString(MEMBER_NAMES[i])) == NULL) {
            return NULL;
        }
    }
    Py_INCREF(format);
    Py_XSETREF(receipts.format, format);
    Py_INCREF(hash_alg);
    Py_XSETREF(receipts.hash_alg, hash_alg);
    receipts.max_proof_nodes = max_proof_nodes;
    receipts.max_json_int = max_json_int;
    receipts.max_batch_size = max_batch_size;
    receipts.max_version = max_version;
    init_tables();
    for (int i = 0; i < 8; i++) {
        add_known_name(parser.keys[i]);
    }
    for (int code = 1; code <= RECORD_TYPES; code++) {
        for (Py_ssize_t i = 0; i < parser.schemas[code].count; i++) {
            add_known_name(parser.schemas[code].fields[i].name);
        }
    }
    receipts.ready = 1;
    Py_RETURN_NONE;
}

/* --- module ----------------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"merkle_root", (PyCFunction)merkle_root, METH_O, merkle_root_doc},
    {"merkle_levels", (PyCFunction)merkle_levels, METH_O, merkle_levels_doc},
    {"fold_proof", (PyCFunction)(void (*)(void))fold_proof, METH_FASTCALL, fold_proof_doc},
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL, configure_doc},
    {"hmac_states", (PyCFunction)hmac_states, METH_O, hmac_states_doc},
    {"commit_batch", (PyCFunction)(void (*)(void))commit_batch, METH_FASTCALL,
     commit_batch_doc},
    {"configure_records", (PyCFunction)configure_records, METH_VARARGS, configure_records_doc},
    {"parse_record", (PyCFunction)parse_record, METH_O, parse_record_doc},
    {"configure_receipts", (PyCFunction)configure_receipts, METH_VARARGS,
     configure_receipts_doc},
    {"parse_receipt", (PyCFunction)parse_receipt, METH_O, parse_receipt_doc},
    {"parse_disclosure", (PyCFunction)parse_disclosure, METH_O, parse_disclosure_doc},
    {"parse_disclosure_json", (PyCFunction)parse_disclosure_json, METH_O,
     parse_disclosure_json_doc},
    {"check_offline", (PyCFunction)check_offline, METH_O, check_offline_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "ledger._speedups",
    "Optional C speedups of the ledger core (OpenSSL SHA-256); see ledger/_speedups.c.",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module_def);
}
